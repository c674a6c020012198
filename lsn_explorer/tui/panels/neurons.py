"""Neurons: run an identification method, see counts, per-layer bars, overlap, and one neuron."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, Static

from lsn_explorer.core.neurons.methods import METHODS, TITLES
from lsn_explorer.errors import LsnError, SetInUse
from lsn_explorer.tui.messages import SessionChanged
from lsn_explorer.tui.panels.base import IDLE_TOTAL, Panel, Throttle
from lsn_explorer.tui.screens.replace_set import ReplaceChoice, ReplaceSetScreen
from lsn_explorer.tui.widgets import tables
from lsn_explorer.tui.widgets.charts import heat_cell, layer_chart
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.views import NeuronProfile, NeuronSetSummary, format_params, parse_params


class NeuronsPanel(Panel):
    BINDINGS = [Binding("ctrl+t", "run_method", "Run method")]
    DEFAULT_FOCUS = "#method"

    def __init__(self) -> None:
        super().__init__()
        self._run_label: str | None = None  # label of a run started here that has not reported its result

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="neurons-left"):
                yield Label("Identify neurons over the ticked languages", classes="title")
                with Horizontal(classes="form"):
                    yield Label("method", classes="field")
                    yield Select([(TITLES.get(m, m), m) for m in METHODS], value="lape", allow_blank=False,
                                 id="method", compact=True)
                with Horizontal(classes="form"):
                    yield Label("parameters", classes="field")
                    yield Input(format_params("lape"), id="method-params", compact=True)
                with Horizontal(classes="form"):
                    yield Label("save as", classes="field")
                    yield Input(placeholder="the method's name", id="method-name", compact=True)
                with Horizontal(classes="form"):
                    yield Label("reference", classes="field")
                    yield Select([], prompt="(random only)", id="method-reference", compact=True)
                yield Button("Run method (Ctrl+T)", id="method-run", variant="primary")
                yield ProgressBar(total=IDLE_TOTAL, id="method-bar", show_eta=False)
                yield Static("", id="method-progress", markup=False)
                with Horizontal(classes="form"):
                    yield Label("show set", classes="field")
                    yield Select([], prompt="(no sets yet)", id="set-choice", compact=True)
                yield DataTable(id="set-counts", cursor_type="none", zebra_stripes=True)
                yield Label("Inspect a neuron (LAYER.INDEX, Enter)", classes="title")
                yield Input(placeholder="e.g. 3.17", id="inspect", compact=True)
                yield Static("", id="inspect-sets")
            with Vertical(id="neurons-right"):
                yield Label("Neurons per layer", classes="title")
                yield Static("", id="layer-chart")
                yield Label("Overlap between languages (Jaccard)", classes="title")
                yield DataTable(id="overlap", cursor_type="none")
                yield DataTable(id="inspect-table", cursor_type="none", zebra_stripes=True)

    # -- restoring and refreshing --------------------------------------------------------------
    def restore(self, workbench: Workbench) -> None:
        self.records_changed()

    def model_ready(self) -> None:
        self.records_changed()

    def records_changed(self) -> None:
        self._refresh_sets()

    def _refresh_sets(self, show: str | None = None) -> None:
        """List the stored sets and show `show` (else the one shown, else the newest).

        The options are set before the value: a Select refuses a value it does not list."""
        names = self.workbench.neuron_set_names()
        choice = self.query_one("#set-choice", Select)
        current = next((n for n in (show, choice.value) if n in names), names[0] if names else None)
        choice.set_options([(n, n) for n in names])
        self.query_one("#method-reference", Select).set_options([(n, n) for n in names])
        if current is not None:
            with self.prevent(Select.Changed):
                choice.value = current
            if self.workbench.handle is not None:  # sets are tensors: wait until the worker loaded torch
                self._show(current)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "method" and isinstance(event.value, str):
            self.query_one("#method-params", Input).value = format_params(event.value)
        elif event.select.id == "set-choice" and isinstance(event.value, str) and self.workbench.handle is not None:
            self._show(event.value)

    def _show(self, name: str) -> None:
        try:
            summary = self.workbench.neuron_summary(name)
        except LsnError as exc:
            self.host.show_error(exc)
            return
        self._render_summary(summary)

    def _render_summary(self, s: NeuronSetSummary) -> None:
        tables.fill(self.query_one("#set-counts", DataTable),
                    ["language", "neurons", *[f"L{layer}" for layer in range(s.n_layers)]],
                    [[lang, f"{n:,}", *[str(c) for c in s.per_layer[lang]]] for lang, n in s.counts.items()])
        params = " ".join(f"{k}={v}" for k, v in s.params.items())
        chart = layer_chart(s.per_layer, s.n_layers)
        chart.title = f"{s.name} ({TITLES.get(s.method, s.method)}; {params})"
        self.query_one("#layer-chart", Static).update(chart)
        tables.fill(self.query_one("#overlap", DataTable), ["", *s.overlap_langs],
                    [[lang, *[heat_cell(v) for v in row]] for lang, row in zip(s.overlap_langs, s.overlap)])

    # -- running a method ----------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "method-run":
            self.run_method()

    def action_run_method(self) -> None:
        self.run_method()

    def run_method(self) -> None:
        method = str(self.query_one("#method", Select).value)
        try:
            params = parse_params(method, self.query_one("#method-params", Input).value)
        except LsnError as exc:
            self.host.show_error(exc)
            return
        name = self.query_one("#method-name", Input).value.strip() or method
        reference = self.query_one("#method-reference", Select).value
        reference = reference if isinstance(reference, str) else None
        if method == "random" and reference is None:
            self.host.show_error(LsnError("the random baseline needs a reference set",
                                         "choose a stored set under 'reference'"))
            return
        if not self.host.lane_free():  # say so now, not after asking about the name
            return
        try:
            self.workbench.check_replace(name)
        except SetInUse as exc:
            self._ask(exc, method, params, reference)
            return
        self._start(method, params, name, reference)

    def _ask(self, in_use: SetInUse, method: str, params: dict[str, Any], reference: str | None) -> None:
        """The name is used by a switched-on row: save under a free name, replace, or do nothing."""

        def answered(choice: ReplaceChoice | None) -> None:
            if choice == "save_as":
                self._start(method, params, in_use.free_name, reference)
            elif choice == "replace":
                self._start(method, params, in_use.name, reference, replace=True)
            else:
                self.notify(f"{TITLES.get(method, method)} not run; {in_use.name!r} is unchanged", markup=False)

        self.app.push_screen(ReplaceSetScreen(in_use), callback=answered)

    def _start(self, method: str, params: dict[str, Any], name: str, reference: str | None,
               replace: bool = False) -> None:
        workbench = self.workbench
        label = f"{TITLES.get(method, method)} over {', '.join(workbench.state.languages)}"
        throttle = Throttle()

        def progress(lang: str, done: int, total: int) -> None:  # on the worker thread
            if throttle.due(final=done >= total):
                self.app.call_from_thread(self._progressed, label, lang, done, total)

        def call(cancel: Any) -> NeuronSetSummary:
            return workbench.identify(method, params, name=name, reference=reference, progress=progress,
                                      cancel=cancel, replace=replace)

        if self.run_model_task(label, call, self._identified):
            self._run_label = label
            self.query_one("#method-bar", ProgressBar).update(total=None, progress=0)  # until the first report
            self.query_one("#method-progress", Static).update(f"{label} → {name}…")

    def _progressed(self, label: str, lang: str, done: int, total: int) -> None:
        self.query_one("#method-bar", ProgressBar).update(total=total, progress=done)
        side = "the English side" if lang == "en" else lang
        self.query_one("#method-progress", Static).update(
            f"{label}: {side}, {done:,} / {total:,} sentences")

    def _identified(self, summary: NeuronSetSummary) -> None:
        self._run_label = None
        counts = ", ".join(f"{lang} {n}" for lang, n in summary.counts.items())
        self.query_one("#method-bar", ProgressBar).update(total=IDLE_TOTAL, progress=IDLE_TOTAL)
        self.query_one("#method-progress", Static).update(f"stored {summary.name}: {counts}")
        self.notify(f"{summary.name}: {counts}", title="neurons identified", markup=False)
        self._refresh_sets(show=summary.name)
        self.post_message(SessionChanged())

    def lane_freed(self, cancelled: bool) -> None:
        if self._run_label is None:  # finished (or not ours)
            return
        self.query_one("#method-bar", ProgressBar).update(total=IDLE_TOTAL, progress=0)
        self.query_one("#method-progress", Static).update(
            f"{self._run_label}: {'cancelled' if cancelled else 'stopped by an error (see the message)'}; "
            "nothing stored")
        self._run_label = None

    # -- one neuron ----------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "inspect":
            try:
                profile = self.workbench.neuron_profile(event.value)
            except LsnError as exc:
                self.host.show_error(exc)
                return
            self._render_profile(profile)
        elif event.input.id in ("method-params", "method-name"):
            self.run_method()

    def _render_profile(self, p: NeuronProfile) -> None:
        tables.fill(self.query_one("#inspect-table", DataTable), [f"{p.layer}.{p.neuron} ({p.site})", *p.columns],
                    [[lang, *[f"{v:.3f}" for v in values]] for lang, values in p.rows.items()])
        member = ", ".join(p.member_of) if p.member_of else "no stored set"
        self.query_one("#inspect-sets", Static).update(f"{p.layer}.{p.neuron} is in: {member}")

