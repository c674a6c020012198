"""Results: the session's evaluations and, for the chosen one, its table (languages down, rows
across, `score ± CI half-width` over `Δ` against "none") coloured as a heat map.

The table and each cell's heat class come from the workbench (`workbench.evals`); this panel
only maps classes to colours. The bootstrap behind the CIs runs in a thread worker.
"""

from __future__ import annotations

import traceback

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, Static

from lsn_explorer.errors import LsnError
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.tui.widgets import tables
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.evals import EvalView
from lsn_explorer.workbench.jobs import JobRow

# Heat classes (workbench.evals) as Rich styles: red worse, blue better than "none", as the PNG
# heat map's RdBu colour map; pale when Δ's CI includes 0.
HEAT_STYLES: dict[str, str] = {
    "base": "bold", "missing": "dim", "same": "",
    "worse-1": "#d6604d", "worse-2": "black on #f4a582", "worse-3": "bold white on #b2182b",
    "better-1": "#4393c3", "better-2": "black on #92c5de", "better-3": "bold white on #2166ac",
}
EVAL_COLUMNS = ("evaluation", "task", "languages", "columns", "state")
LEGEND = (("worse-3", " much worse "), ("worse-2", " worse "), ("worse-1", " worse? "), ("same", " same "),
          ("better-1", " better? "), ("better-2", " better "), ("better-3", " much better "))


def legend() -> Text:
    text = Text("Δ vs none:  ")
    for heat, label in LEGEND:
        text.append(label, style=HEAT_STYLES[heat] or "reverse")
        text.append(" ")
    text.append("  ? = its 95% CI includes 0", style="dim")
    return text


class ResultsPanel(Panel):
    BINDINGS = [Binding("p", "write_png", "PNG heat map")]
    DEFAULT_FOCUS = "#evals-table"

    def compose(self) -> ComposeResult:
        yield Label("Evaluations of this session (Enter shows one · P writes a PNG heat map · Ctrl+E starts one)",
                    classes="title")
        yield DataTable(id="evals-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="result-title", classes="title")
        yield Static("", id="result-status", markup=False)
        yield DataTable(id="result-table", cursor_type="none")
        yield Static(legend(), id="heat-legend")

    def on_mount(self) -> None:
        self.query_one("#evals-table", DataTable).add_columns(*EVAL_COLUMNS)
        self.current: str | None = None

    def restore(self, workbench: Workbench) -> None:
        self.current = None
        self.query_one("#result-table", DataTable).clear(columns=True)
        self.query_one("#result-title", Label).update("")
        self.query_one("#result-status", Static).update("")
        self.records_changed()
        newest = self._selected()
        if newest is not None:
            self.show(newest)

    def records_changed(self) -> None:
        table = self.query_one("#evals-table", DataTable)
        selected = self._selected()
        rows = list(self.workbench.evaluations())
        tables.fill(table, EVAL_COLUMNS, [[row.name, row.task, row.langs, str(row.columns), row.state] for row in rows],
                    keys=[row.name for row in rows])
        if selected is not None and table.row_count and selected in {r.value for r in table.rows}:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def job_ended(self, row: JobRow) -> None:
        self.records_changed()
        if row.eval_name is not None:
            self.show(row.eval_name)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "evals-table" and event.row_key.value is not None:
            self.show(str(event.row_key.value))

    def _selected(self) -> str | None:
        table = self.query_one("#evals-table", DataTable)
        if not table.row_count or not 0 <= table.cursor_row < table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def show(self, name: str) -> None:
        """Select the evaluation `name` and show its table (computed in a worker)."""
        table = self.query_one("#evals-table", DataTable)
        if name not in {r.value for r in table.rows}:
            self.records_changed()
        if name in {r.value for r in table.rows}:
            table.move_cursor(row=table.get_row_index(name), animate=False)
        self.current = name
        self.query_one("#result-status", Static).update(f"{name}: computing the table…")
        self._load(name)

    @work(thread=True, exclusive=True, group="results", exit_on_error=False)
    def _load(self, name: str) -> None:
        try:
            view = self.workbench.eval_view(name)
        except LsnError as exc:
            self.app.call_from_thread(self.host.show_error, exc)
            return
        except Exception as exc:  # a bug: keep the app alive and the traceback in the session
            self.workbench.session.log(f"the table of {name} failed:\n{traceback.format_exc()}", level="error")
            self.app.call_from_thread(self.notify, f"the table of {name} failed unexpectedly: {exc} "
                                      "(traceback in the session's events)", severity="error", markup=False)
            return
        self.app.call_from_thread(self._draw, view)

    def _draw(self, view: EvalView) -> None:
        if view.name != self.current:
            return  # another evaluation was chosen meanwhile
        self.query_one("#result-title", Label).update(f"{view.name} · {view.task} · {view.title}")
        self.query_one("#result-status", Static).update(view.status)
        table = self.query_one("#result-table", DataTable)
        table.clear(columns=True)
        widths = [max([len(header)] + [max(len(cells[i].text), len(cells[i].delta)) for _, cells in view.rows])
                  for i, header in enumerate(view.columns)]
        table.add_column("lang")
        for header, width in zip(view.columns, widths):
            table.add_column(header, width=width)
        for lang, cells in view.rows:
            shown = [Text(f"{cell.text.rjust(width)}\n{cell.delta.rjust(width)}", style=HEAT_STYLES[cell.heat])
                     for cell, width in zip(cells, widths)]
            table.add_row(Text(lang, style="bold"), *shown, height=2)

    def action_write_png(self) -> None:
        if self.current is None:
            self.notify("choose an evaluation first", severity="warning", markup=False)
            return
        self._write_png(self.current)

    @work(thread=True, group="results-png", exit_on_error=False)
    def _write_png(self, name: str) -> None:
        try:
            path = self.workbench.write_heat_map(name)
        except LsnError as exc:
            self.app.call_from_thread(self.host.show_error, exc)
            return
        self.app.call_from_thread(self.notify, f"heat map written to {path}", markup=False)
