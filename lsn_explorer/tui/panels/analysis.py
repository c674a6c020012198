"""Analysis: the latent-space analyses of Tezuka & Inoue (centroids, PCA, CEVR, mutual k-NN,
parallel vs non-parallel) on the languages under study, without and with the switched-on
interventions and a random baseline; a terminal plot, the numbers at one depth beside it, a layer
slider and a PNG export.

Compute runs the model once per (model, text, intervention) in the model lane (the states are kept
in the session, so computing again is quick); every plot, layer and k after that only asks the
workbench's `LatentView` for another result, in a thread worker, without the model. Bad input is a
notification; the fields and the plot shown stay as they were.
"""

from __future__ import annotations

import traceback
from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, DataTable, Input, Label, ProgressBar, Select, Static

from lsn_explorer.errors import LsnError
from lsn_explorer.tui.hints import app_hint
from lsn_explorer.tui.panels.base import IDLE_TOTAL, Panel, Throttle
from lsn_explorer.tui.widgets import tables
from lsn_explorer.tui.widgets.plots import Plot
from lsn_explorer.tui.widgets.slider import LayerSlider
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.latent import (
    ANALYSES,
    CONDITION_CHOICES,
    DEFAULT_K,
    TITLES,
    AnalysisRequest,
    Figure,
    LatentView,
    TableView,
    figure,
    table,
    whole_number,
)

# Hints that name a CLI flag whose field is in this tab (see tui/hints.py).
TAB_HINTS = (("--langs", "type at least one more language in the languages field, e.g. en,ja,zh"),
             ("--corpus", "type one of those in the languages field"),
             ("--k", "lower k or raise lines in this tab"), ("--lines", "raise lines in this tab"))
EMPTY = "Choose languages and conditions, then Compute (Ctrl+T): the model reads the text once; every plot after that is instant."


class AnalysisPanel(Panel):
    BINDINGS = [Binding("ctrl+t", "compute", "Compute states"), Binding("p", "write_png", "PNG")]
    DEFAULT_FOCUS = "#analysis-kind"

    def __init__(self) -> None:
        super().__init__()
        self.view: LatentView | None = None
        self.current: dict[str, Any] | None = None  # the result on screen
        self._computing = False
        self._serial = 0  # the newest result asked for; older ones arriving late are dropped
        self._numbers: TableView | None = None  # what the table shows
        self._langs_filled = ""  # what restore put in the languages field (followed until edited)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="form"):
            yield Label("analysis", classes="field")
            yield Select([(TITLES[a], a) for a in ANALYSES], value="parallel", allow_blank=False, id="analysis-kind",
                         compact=True)
            yield Label("languages", classes="field short")
            yield Input(placeholder="en,ja,zh", id="analysis-langs", compact=True)
            yield Label("lines", classes="field short")
            yield Input("", id="analysis-lines", compact=True, classes="small")
            yield Label("k", classes="field short")
            yield Input(str(DEFAULT_K), id="analysis-k", compact=True, classes="small")
        with Horizontal(classes="form"):
            yield Label("conditions", classes="field")
            yield Select([(label, key) for key, label in CONDITION_CHOICES], value="none", allow_blank=False,
                         id="analysis-conditions", compact=True)
            yield Checkbox("rows use each language's own neurons (ja → {lang})", True, id="analysis-each",
                           compact=True)
            yield Button("Compute (Ctrl+T)", id="analysis-compute", variant="primary", compact=True)
        yield Static("", id="analysis-rows", classes="note", markup=False)
        with Horizontal(id="analysis-progress"):
            yield ProgressBar(total=IDLE_TOTAL, id="analysis-bar", show_eta=False)
            yield Static("", id="analysis-status", markup=False)
        with Horizontal(id="analysis-body"):
            yield Plot(EMPTY, id="analysis-plot")
            with Vertical(id="analysis-side"):
                yield LayerSlider(id="analysis-layer")
                yield Label("", id="analysis-table-title", classes="title")
                yield DataTable(id="analysis-table", cursor_type="none", zebra_stripes=True)

    # -- session and fields --------------------------------------------------------------------
    def restore(self, workbench: Workbench) -> None:
        self.view = LatentView(workbench)
        self.current = None
        defaults = self.view.defaults()
        self._langs_filled = ",".join(defaults.langs)
        self.query_one("#analysis-langs", Input).value = self._langs_filled
        self.query_one("#analysis-lines", Input).value = str(defaults.lines)
        with self.prevent(Select.Changed):
            self.query_one("#analysis-conditions", Select).value = defaults.conditions
        self.query_one(Plot).show(None, EMPTY)
        self.query_one("#analysis-table", DataTable).clear(columns=True)
        self._numbers = None
        self.query_one("#analysis-table-title", Label).update("")
        slider = self.query_one(LayerSlider)
        slider.set_range(0, 0)
        slider.disabled = True
        self._show_rows()

    def on_show(self, event: events.Show) -> None:
        """Brought to the front: follow the Languages tab and the switch rows, unless edited here."""
        if self.view is None:
            return
        field = self.query_one("#analysis-langs", Input)
        current = ",".join(self.view.defaults().langs)
        if field.value == self._langs_filled and current != self._langs_filled:
            field.value = self._langs_filled = current
        self._show_rows()

    def _show_rows(self) -> None:
        rows = self.view.switched_on() if self.view is not None else []
        self.query_one("#analysis-rows", Static).update(
            f"switched-on rows (Interventions, F4): {', '.join(rows) if rows else 'none'} · "
            "states are computed once per (model, text, intervention) and kept in the session")

    def _request(self) -> AnalysisRequest:
        return AnalysisRequest.from_fields(
            langs=self.query_one("#analysis-langs", Input).value, lines=self.query_one("#analysis-lines", Input).value,
            conditions=str(self.query_one("#analysis-conditions", Select).value),
            each_language=self.query_one("#analysis-each", Checkbox).value)

    def refused(self, exc: LsnError) -> None:
        hint = app_hint(exc.hint, TAB_HINTS)
        self.notify(exc.message + (f"\n{hint}" if hint else ""), title="error", severity="error", timeout=8,
                    markup=False)

    # -- computing the states (the model lane) --------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "analysis-compute":
            self.compute()

    def action_compute(self) -> None:
        self.compute()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "analysis-k":
            self.show_result()
        else:
            self.compute()

    def compute(self) -> None:
        """Check the fields, then compute (or load) the states in the model lane."""
        view = self.view
        if view is None or not self.host.lane_free():
            return
        try:
            labels = view.prepare(self._request())
        except LsnError as exc:
            self.refused(exc)
            return
        throttle = Throttle()

        def progress(label: str, done: int, total: int) -> None:  # on the worker thread
            if throttle.due(final=done >= total):
                self.app.call_from_thread(self._progressed, label, done, total)

        if self.run_model_task("latent states", lambda cancel: view.compute(progress, cancel), self._computed):
            self._computing = True
            self.query_one("#analysis-bar", ProgressBar).update(total=None, progress=0)
            self.query_one("#analysis-status", Static).update(
                f"states for {len(labels)} condition(s): {'; '.join(labels)} (from the session where kept; Esc cancels)")

    def _progressed(self, label: str, done: int, total: int) -> None:
        self.query_one("#analysis-bar", ProgressBar).update(total=total, progress=done)
        self.query_one("#analysis-status", Static).update(f"reading states {label}: {done:,} / {total:,} sentences")

    def lane_freed(self, cancelled: bool) -> None:
        if not self._computing:
            return
        self._computing = False  # cancelled or failed: what finished is kept in the session
        self.query_one("#analysis-bar", ProgressBar).update(total=IDLE_TOTAL, progress=0)
        self.query_one("#analysis-status", Static).update(
            ("cancelled" if cancelled else "stopped by an error (see the message)")
            + "; the states finished before are kept, and Compute reuses them")

    def _computed(self, states: Any) -> None:
        self._computing = False
        assert self.view is not None and self.view.request is not None
        request = self.view.request
        self.query_one("#analysis-bar", ProgressBar).update(total=IDLE_TOTAL, progress=IDLE_TOTAL)
        self.query_one("#analysis-status", Static).update(
            f"states: {', '.join(request.langs)} · {min(len(v) for v in states.texts.lines.values())} lines · "
            f"{len(states.conditions)} condition(s) · depths 0–{states.depths - 1}")
        slider = self.query_one(LayerSlider)
        slider.disabled = False
        slider.set_range(states.depths - 1, slider.value if self.current is not None else states.depths // 2)
        self.show_result()

    # -- results (no model: a thread worker) ----------------------------------------------------
    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "analysis-kind":
            self.show_result()

    def on_layer_slider_changed(self, event: LayerSlider.Changed) -> None:
        self.show_result()

    def show_result(self) -> None:
        """Show the chosen analysis at the slider's depth from the computed states."""
        view = self.view
        if view is None or view.states is None:
            return
        try:
            k = whole_number(self.query_one("#analysis-k", Input).value, "k")
        except LsnError as exc:
            self.refused(exc)
            return
        self._serial += 1
        self._analyse(view, str(self.query_one("#analysis-kind", Select).value), self.query_one(LayerSlider).value,
                      k, self._serial)

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def _analyse(self, view: LatentView, analysis: str, layer: int, k: int, serial: int) -> None:
        try:
            result = view.result(analysis, layer, k)
            shown = figure(result, layer), table(result, layer)
        except LsnError as exc:
            self.app.call_from_thread(self.refused, exc)
            return
        except Exception as exc:  # a bug: keep the app alive and the traceback in the session
            view.workbench.session.log(f"the {analysis} analysis failed:\n{traceback.format_exc()}", level="error")
            self.app.call_from_thread(self.notify, f"the {analysis} analysis failed unexpectedly: {exc} "
                                      "(traceback in the session's events)", severity="error", markup=False)
            return
        self.app.call_from_thread(self._draw, serial, result, *shown)

    def _draw(self, serial: int, result: dict[str, Any], chart: Figure, numbers: TableView) -> None:
        if serial != self._serial:
            return  # another analysis or layer was asked for meanwhile
        self.current = result
        self.query_one(Plot).show(chart)
        if numbers == self._numbers:
            return  # the same numbers again (the slider's range change asks once more): no flicker
        self._numbers = numbers
        self.query_one("#analysis-table-title", Label).update(numbers.title)
        tables.fill(self.query_one("#analysis-table", DataTable), numbers.columns,
                    [[f"{cell:.{numbers.digits}f}" if isinstance(cell, float) else str(cell) for cell in row]
                     for row in numbers.rows])

    # -- export --------------------------------------------------------------------------------
    def action_write_png(self) -> None:
        if self.current is None or self.view is None:
            self.notify("compute an analysis first (Ctrl+T)", severity="warning", markup=False)
            return
        self._write_png(self.view, self.current)

    @work(thread=True, group="analysis-png", exit_on_error=False)
    def _write_png(self, view: LatentView, result: dict[str, Any]) -> None:
        try:
            path = view.export_png(result)
        except LsnError as exc:
            self.app.call_from_thread(self.refused, exc)
            return
        self.app.call_from_thread(self.notify, f"{result['analysis']} figure written to {path}", markup=False)
