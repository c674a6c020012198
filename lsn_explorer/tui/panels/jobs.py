"""Jobs: the session's background jobs (statistics, evaluations, fine-tunes) with progress bars and
time left; cancel, resume, read the log, open an evaluation's table; a fine-tune's loss curve.

Jobs run in their own processes and write their progress to the session store; this panel reads
it on a timer (torch-free, a few milliseconds) while it is in front or while a job it saw is
active, so it notices a job ending whichever tab is in front and posts `JobEnded`. A job that ran
or ended while the app was closed shows with its real state when the session is opened.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, Static

from lsn_explorer.errors import LsnError
from lsn_explorer.tui.messages import JobEnded, ResultsRequested
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.tui.widgets import tables
from lsn_explorer.tui.widgets.charts import loss_curve
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.jobs import JobRow

COLUMNS = ("job", "what", "state", "progress", "left", "last")
POLL_S = 0.5  # how often the job rows are read while they matter
BAR_WIDTH = 16
LAST_WIDTH = 44  # the "last" column fits 120 columns; the detail box below shows all of it
CURVE_WIDTH = 96  # the loss curve's columns (plus its axis labels) within 120
CURVE_HEIGHT = 6
STATE_STYLES = {"queued": "yellow", "running": "bold cyan", "finished": "green", "failed": "bold red",
                "cancelled": "magenta", "interrupted": "bold magenta"}


def progress_bar(row: JobRow, width: int = BAR_WIDTH) -> Text:
    """`━━━━━━━╺━━━━━━━  45%`: the job's fraction done, coloured by its state."""
    if row.fraction is None:
        return Text("·" * width + "    ", style="dim")
    filled = round(row.fraction * width)
    bar = Text("━" * filled, style=STATE_STYLES.get(row.state, ""))
    bar.append("━" * (width - filled), style="dim")
    bar.append(f" {row.fraction:4.0%}")
    return bar


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


class JobsPanel(Panel):
    BINDINGS = [
        Binding("c", "cancel_job", "Cancel job"),
        Binding("r", "resume_job", "Resume job"),
        Binding("l", "show_log", "Log"),
        Binding("o", "open_results", "Open results"),
    ]
    DEFAULT_FOCUS = "#jobs-table"

    def compose(self) -> ComposeResult:
        yield Label("Background jobs of this session (C cancel · R resume · L log · Enter/O results · "
                    "Ctrl+E evaluation · Ctrl+F fine-tune)", classes="title")
        yield DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="job-detail", markup=False)
        yield Static("", id="loss-curve")

    def on_mount(self) -> None:
        self.query_one("#jobs-table", DataTable).add_columns(*COLUMNS)
        self.rows: dict[int, JobRow] = {}
        self.shown: list[JobRow] = []
        self.set_interval(POLL_S, self.poll)

    def restore(self, workbench: Workbench) -> None:
        # Another session: what ended before it was opened is shown, not announced.
        self.rows = {}
        self.read(announce=False)

    def on_show(self) -> None:
        self.read()

    def poll(self) -> None:
        if self.host.workbench is not None and (self.in_front() or any(row.active for row in self.rows.values())):
            self.read()

    def read(self, *, announce: bool = True) -> None:
        """Read the job rows; post `JobEnded` for each that was active and is not any more."""
        try:
            rows = self.workbench.job_rows()
        except LsnError as exc:
            self.host.show_error(exc)
            return
        for row in rows:
            before = self.rows.get(row.id)
            if announce and before is not None and before.active and not row.active:
                self.post_message(JobEnded(row))
        self.rows = {row.id: row for row in rows}
        if self.in_front() and rows != self.shown:
            self._draw(rows)

    def launched(self, job_id: int) -> None:
        """A job was started from the app: list it and put the cursor on it."""
        self.read()
        self._draw(list(self.rows.values()), select=job_id)

    def _draw(self, rows: list[JobRow], select: int | None = None) -> None:
        table = self.query_one("#jobs-table", DataTable)
        current = select if select is not None else self._selected_id()
        newest_first = list(reversed(rows))
        tables.fill(table, COLUMNS, [[str(row.id), row.name, Text(row.state, style=STATE_STYLES.get(row.state, "")),
                                      progress_bar(row), row.eta, _clip(row.progress, LAST_WIDTH)] for row in newest_first],
                    keys=[str(row.id) for row in newest_first])
        self.shown = rows
        if current is not None and current in self.rows:
            table.move_cursor(row=table.get_row_index(str(current)), animate=False)
        self._detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_results()

    def _selected_id(self) -> int | None:
        table = self.query_one("#jobs-table", DataTable)
        if not table.row_count or not 0 <= table.cursor_row < table.row_count:
            return None
        return int(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def _selected(self) -> JobRow | None:
        job_id = self._selected_id()
        return None if job_id is None else self.rows.get(job_id)

    def _detail(self) -> None:
        row = self._selected()
        if row is None:
            text = "No background jobs yet. Ctrl+E starts an evaluation, Ctrl+F a fine-tune; statistics jobs " \
                   "start with `lsn-explorer stats --detach`."
        else:
            lines = [f"job {row.id} · {row.name} · {row.state}"]
            lines += [f"{key:<8} {value}" for key, value in (("started", row.started), ("ended", row.ended)) if value]
            if row.progress:
                lines.append(f"{'last':<8} {row.progress}")
            keys = [k for k, ok in (("C cancels", row.can_cancel), ("R resumes", row.can_resume),
                                    ("Enter shows the table", row.eval_name is not None), ("L shows the log", True)) if ok]
            lines.append(" · ".join(keys))
            text = "\n".join(lines)
        self.query_one("#job-detail", Static).update(text)
        self._curve(row)

    def _curve(self, row: JobRow | None) -> None:
        """The selected fine-tune's training loss (hidden for other jobs)."""
        curve = self.query_one("#loss-curve", Static)
        curve.display = row is not None and row.kind == "finetune"
        if row is not None and row.kind == "finetune":
            title = Text("training loss", style="bold")
            if row.losses:
                step, loss = row.losses[-1]
                title.append(f" · {loss:.4f} at step {step} · lowest {min(v for _, v in row.losses):.4f}", style="")
            curve.update(Text("\n").join([title, loss_curve(row.losses, CURVE_WIDTH, CURVE_HEIGHT)]))

    # -- actions -------------------------------------------------------------------------------
    def action_cancel_job(self) -> None:
        row = self._selected()
        if row is None:
            return
        if not row.can_cancel:
            self.notify(f"job {row.id} is {row.state}: there is nothing to cancel", severity="warning", markup=False)
            return
        try:
            self.workbench.cancel_job(row.id)
        except LsnError as exc:
            self.host.show_error(exc)
            return
        self.notify(f"job {row.id}: asked to stop; it stops after the current batch and keeps what is done",
                    markup=False)
        self.read()

    def action_resume_job(self) -> None:
        row = self._selected()
        if row is None:
            return
        if not row.can_resume:
            why = "it is still active" if row.active else "it has finished"
            self.notify(f"job {row.id} cannot be resumed: {why}", severity="warning", markup=False)
            return
        try:
            self.workbench.resume_job(row.id)
        except LsnError as exc:
            self.host.show_error(exc)
            return
        self.notify(f"job {row.id} resumed; finished units are kept, not recomputed", markup=False)
        self.read()

    def action_show_log(self) -> None:
        from lsn_explorer.tui.screens.job_log import JobLogScreen

        row = self._selected()
        if row is None:
            return
        try:
            lines = self.workbench.job_log(row.id)
        except LsnError as exc:
            self.host.show_error(exc)
            return
        self.app.push_screen(JobLogScreen(f"job {row.id} · {row.name} · {row.state}", lines))

    def action_open_results(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row.kind == "finetune":
            self.notify(f"job {row.id} trains an adapter: its loss curve is below; once it has finished, choose "
                        "the adapter in the Generate (F5) or Score (F6) tab, or in the Evaluate form", markup=False)
            return
        if row.eval_name is None:
            self.notify(f"job {row.id} is a {row.kind} job; its results are records (Languages tab, F2)",
                        markup=False)
            return
        self.post_message(ResultsRequested(row.eval_name))
