"""History: the session's generations and scores, newest first; re-run one with the current
interventions (it goes to the Generate or Score tab and is recorded as a new entry).

Re-running posts `RerunRequested`; the app routes it to the panel that made the entry.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Static

from lsn_explorer.tui.messages import RerunRequested
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.tui.widgets import tables
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.views import HistoryEntry

COLUMNS = ("record", "kind", "what", "rows")


class HistoryPanel(Panel):
    BINDINGS = [Binding("r", "rerun", "Re-run with current interventions")]
    DEFAULT_FOCUS = "#history-table"

    def compose(self) -> ComposeResult:
        yield Label("Generations and scores of this session (Enter shows one, R re-runs it)", classes="title")
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="history-detail-box"):
            yield Static("", id="history-detail", markup=False)

    def on_mount(self) -> None:
        self.query_one("#history-table", DataTable).add_columns(*COLUMNS)
        self.entries: dict[str, HistoryEntry] = {}

    def restore(self, workbench: Workbench) -> None:
        self.records_changed()

    def records_changed(self) -> None:
        table = self.query_one("#history-table", DataTable)
        # New records come in at the top: keep the cursor on the record it was on (by id), or R
        # would re-run whichever entry slid under it.
        selected = self._selected()
        self.entries = {str(entry.record): entry for entry in self.workbench.history()}
        tables.fill(table, COLUMNS, [[key, entry.kind, entry.title[:40], str(len(entry.rows))]
                                     for key, entry in self.entries.items()], keys=list(self.entries))
        if selected is not None and str(selected.record) in self.entries:
            table.move_cursor(row=table.get_row_index(str(selected.record)), animate=False)
        self._detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def _selected(self) -> HistoryEntry | None:
        table = self.query_one("#history-table", DataTable)
        if not self.entries or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.entries.get(str(key))

    def _detail(self) -> None:
        entry = self._selected()
        text = "" if entry is None else "\n".join([f"#{entry.record} {entry.kind}: {entry.title}", *entry.rows])
        self.query_one("#history-detail", Static).update(text or "No generations or scores yet.")

    def action_rerun(self) -> None:
        self.rerun()

    def rerun(self) -> None:
        """Ask for the selected entry to run again (the app sends it to the Generate or Score tab)."""
        entry = self._selected()
        if entry is None:
            self.notify("no history entry selected", severity="warning", markup=False)
            return
        self.post_message(RerunRequested(entry))
