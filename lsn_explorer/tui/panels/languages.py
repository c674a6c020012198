"""Languages: choose the languages under study and collect their activation statistics."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, ProgressBar, SelectionList, Static

from lsn_explorer.core.workbench import LanguageRow, StatsProgress, Workbench
from lsn_explorer.errors import LsnError
from lsn_explorer.tui.messages import SessionChanged
from lsn_explorer.tui.panels.base import Panel


class LanguagesPanel(Panel):
    BINDINGS = [Binding("ctrl+t", "compute", "Compute stats")]
    DEFAULT_FOCUS = "#languages-list"

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="languages-left"):
                yield Label("Languages (space ticks; ✓ = has corpus text)", classes="title")
                yield SelectionList[str](id="languages-list")
            with Vertical(id="languages-right"):
                yield Label("Activation statistics", classes="title")
                yield Static("Statistics are collected at site s (the activation output) over the corpus "
                             "folder's text, per language; they feed LAPE, Act Prob 90p and the "
                             "mean/percentile intervention values.", classes="note")
                with Horizontal(classes="form"):
                    yield Label("tokens per language", classes="field")
                    yield Input(placeholder="all", id="stats-tokens", type="integer", compact=True)
                yield Button("Compute statistics (Ctrl+T)", id="stats-compute", variant="primary")
                yield ProgressBar(total=1, id="stats-bar", show_eta=False)
                yield Static("", id="stats-progress")
                yield Static("", id="stats-summary")

    def restore(self, workbench: Workbench) -> None:
        self.records_changed()

    def records_changed(self) -> None:
        rows, chosen = self.workbench.language_rows(), self.workbench.state.languages
        widget = self.query_one("#languages-list", SelectionList)
        widget.clear_options()
        widget.add_options([(self._row_text(row), row.code, row.code in chosen) for row in rows])
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
        if self.lsn.workbench is not None and chosen != self.workbench.state.languages:
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
            self.lsn.show_error(LsnError("no languages ticked", "tick at least one language in the list"))
            return
        if max_tokens is not None and max_tokens < 1:
            self.lsn.show_error(LsnError("tokens per language must be at least 1", "leave it empty for the whole corpus"))
            return
        bar = self.query_one("#stats-bar", ProgressBar)
        bar.update(total=None, progress=0)
        workbench = self.workbench

        def call(cancel: Any) -> list[dict[str, Any]]:
            return workbench.compute_stats(langs, max_tokens=max_tokens, cancel=cancel,
                                           progress=lambda p: self.app.call_from_thread(self._progressed, p))

        self.run_model_task(f"statistics for {', '.join(langs)}", call, self._collected)

    def _progressed(self, p: StatsProgress) -> None:
        self.query_one("#stats-bar", ProgressBar).update(total=p.total, progress=p.done)
        eta = f"ETA {p.eta_s:.0f} s" if p.eta_s is not None else "ETA –"
        self.query_one("#stats-progress", Static).update(
            f"{p.lang}: {p.done:,} / {p.total:,} tokens · {p.tokens_per_s:,.0f} tok/s · {eta}")

    def _collected(self, summaries: list[dict[str, Any]]) -> None:
        done = ", ".join(f"{s['lang']} {s['tokens']:,}" + (" (already there)" if s["skipped"] else "")
                         for s in summaries)
        self.query_one("#stats-progress", Static).update(f"collected: {done}")
        self.notify(f"statistics collected: {done}", markup=False)
        self.post_message(SessionChanged())
