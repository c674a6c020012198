"""Languages: choose the languages under study and collect their activation statistics."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, ProgressBar, SelectionList, Static

from lsn_explorer.core.progress import Step
from lsn_explorer.errors import LsnError
from lsn_explorer.tui.messages import SessionChanged
from lsn_explorer.tui.panels.base import IDLE_TOTAL, Panel, Throttle
from lsn_explorer.tui.widgets.tick_list import TickList
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.views import LanguageRow


class LanguagesPanel(Panel):
    BINDINGS = [Binding("ctrl+t", "compute", "Compute stats")]
    DEFAULT_FOCUS = "#languages-list"

    def __init__(self) -> None:
        super().__init__()
        self._collecting = False  # a statistics run started here and has not reported its result

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="languages-left"):
                yield Label("Languages (space ticks; ✓ = has corpus text)", classes="title")
                yield TickList(id="languages-list")
            with Vertical(id="languages-right"):
                yield Label("Activation statistics", classes="title")
                yield Static("Statistics are collected at site s (the activation output) over the corpus "
                             "folder's text, per language; they feed LAPE, Act Prob 90p and the "
                             "mean/percentile intervention values.", classes="note")
                with Horizontal(classes="form"):
                    yield Label("tokens per language", classes="field")
                    yield Input(placeholder="all", id="stats-tokens", type="integer", compact=True)
                yield Button("Compute statistics (Ctrl+T)", id="stats-compute", variant="primary")
                yield ProgressBar(total=IDLE_TOTAL, id="stats-bar", show_eta=False)
                yield Static("", id="stats-progress")
                yield Static("", id="stats-summary")

    def restore(self, workbench: Workbench) -> None:
        self.records_changed()

    def records_changed(self) -> None:
        rows, chosen = self.workbench.language_rows(), self.workbench.state.languages
        widget = self.query_one("#languages-list", SelectionList)
        highlighted = widget.highlighted
        widget.clear_options()
        widget.add_options([(self._row_text(row), row.code, row.code in chosen) for row in rows])
        if highlighted is not None and highlighted < widget.option_count:
            widget.highlighted = highlighted  # same rows, same order: Space must tick the row under the cursor
        with_stats = [f"{row.code} {row.stats_tokens:,}" for row in rows if row.stats_tokens is not None]
        self.query_one("#stats-summary", Static).update(
            "With statistics (tokens): " + (", ".join(with_stats) if with_stats else "none yet"))

    @staticmethod
    def _row_text(row: LanguageRow) -> str:
        corpus = "✓" if row.has_corpus else " "
        stats = f"{row.stats_tokens:>7,} tok" if row.stats_tokens is not None else ""
        return f"{row.code:<3} {row.name:<11.11} {row.script:<10.10} {corpus} {stats}"

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        chosen = list(event.selection_list.selected)
        if self.host.workbench is not None and chosen != self.workbench.state.languages:
            self.workbench.set_languages(chosen)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "stats-compute":
            self.compute()

    def action_compute(self) -> None:
        self.compute()

    def compute(self) -> None:
        langs = list(self.workbench.state.languages)
        text = self.query_one("#stats-tokens", Input).value.strip()
        max_tokens = int(text) if text else None
        if not langs:
            self.host.show_error(LsnError("no languages ticked", "tick at least one language in the list"))
            return
        if max_tokens is not None and max_tokens < 1:
            self.host.show_error(LsnError("tokens per language must be at least 1", "leave it empty for the whole corpus"))
            return
        workbench = self.workbench
        throttle = Throttle()

        def progress(p: Step) -> None:  # on the worker thread
            if throttle.due(final=p.done >= p.total):
                self.app.call_from_thread(self._progressed, p)

        def call(cancel: Any) -> list[dict[str, Any]]:
            return workbench.compute_stats(langs, max_tokens=max_tokens, cancel=cancel, progress=progress)

        if self.run_model_task(f"statistics for {', '.join(langs)}", call, self._collected):
            self._collecting = True
            self.query_one("#stats-bar", ProgressBar).update(total=None, progress=0)  # until the first report
            self.query_one("#stats-progress", Static).update(f"reading the corpus of {', '.join(langs)}…")

    def _progressed(self, p: Step) -> None:
        self.query_one("#stats-bar", ProgressBar).update(total=p.total, progress=p.done)
        eta = f"ETA {p.eta_s:.0f} s" if p.eta_s is not None else "ETA –"
        self.query_one("#stats-progress", Static).update(
            f"{p.label}: {p.done:,} / {p.total:,} tokens · {p.per_second:,.0f} tok/s · {eta}")

    def lane_freed(self, cancelled: bool) -> None:
        if not self._collecting:  # finished (or not ours)
            return
        # Cancelled or failed: no bar left spinning; languages that finished before are kept.
        self._collecting = False
        self.query_one("#stats-bar", ProgressBar).update(total=IDLE_TOTAL, progress=0)
        self.query_one("#stats-progress", Static).update(
            ("cancelled" if cancelled else "stopped by an error (see the message)")
            + "; languages finished before that are kept")
        self.records_changed()

    def _collected(self, summaries: list[dict[str, Any]]) -> None:
        self._collecting = False
        done = ", ".join(f"{s['lang']} {s['tokens']:,}" + (" (already there)" if s["skipped"] else "")
                         for s in summaries)
        # Full, also when every language was already there and no progress came.
        self.query_one("#stats-bar", ProgressBar).update(total=IDLE_TOTAL, progress=IDLE_TOTAL)
        self.query_one("#stats-progress", Static).update(f"collected: {done}")
        self.notify(f"statistics collected: {done}", markup=False)
        self.post_message(SessionChanged())
