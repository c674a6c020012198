"""Score: pick a task sample (demo files or a benchmark folder), read it, and score it with and
without the switched-on interventions (label probabilities for XNLI; answer + EM/F1 otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from lsn_explorer.core.data.languages import language_table
from lsn_explorer.core.tasks.registry import TASKS
from lsn_explorer.errors import LsnError
from lsn_explorer.tui.messages import SessionChanged
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.tui.widgets import tables
from lsn_explorer.tui.widgets.adapter_picker import AdapterPicker
from lsn_explorer.workbench.bench import Workbench

if TYPE_CHECKING:
    from lsn_explorer.core.tasks.scoring import SampleScore


class ScorePanel(Panel):
    DEFAULT_FOCUS = "#task"

    def compose(self) -> ComposeResult:
        with Horizontal(classes="form"):
            yield Label("task", classes="field")
            yield Select([(task.title, name) for name, task in TASKS.items()], value="xnli",
                         allow_blank=False, id="task", compact=True)
            yield Label("language", classes="field")
            yield Select([(code, code) for code in language_table()], value="en", allow_blank=False,
                         id="task-lang", compact=True)
            yield Label("sample", classes="field")
            yield Input("0", id="sample", type="integer", compact=True, classes="small")
        with Horizontal(classes="form"):
            yield Label("data folder", classes="field")
            yield Input(placeholder="empty = demo samples, or a folder",
                        id="data-dir", compact=True)
            yield Label("adapter", classes="field short")
            yield AdapterPicker(id="score-adapter")
            yield Button("Show", id="sample-show", compact=True)
            yield Button("Score (Ctrl+R)", id="sample-score", variant="primary", compact=True)
        with VerticalScroll(id="sample-box"):
            yield Static("Choose a task sample and press Show.", id="sample-text", markup=False)
        yield DataTable(id="score-table", cursor_type="none", zebra_stripes=True)

    def restore(self, workbench: Workbench) -> None:
        state = workbench.state
        with self.prevent(Select.Changed):
            self.query_one("#task", Select).value = state.task
            self.query_one("#task-lang", Select).value = state.task_lang
        self.query_one("#sample", Input).value = str(state.sample)
        self.query_one("#data-dir", Input).value = state.data_dir
        self.query_one(AdapterPicker).sync(workbench)

    def model_ready(self) -> None:
        self.query_one(AdapterPicker).sync(self.workbench)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sample-show":
            self.show_sample()
        elif event.button.id == "sample-score":
            self.score()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.show_sample()

    def _choice(self) -> tuple[str, str, int, str]:
        text = self.query_one("#sample", Input).value.strip()
        if not text.isdigit():
            raise LsnError(f"sample {text!r} is not a number", "samples are numbered from 0")
        return (str(self.query_one("#task", Select).value), str(self.query_one("#task-lang", Select).value),
                int(text), self.query_one("#data-dir", Input).value.strip())

    def show_sample(self) -> bool:
        try:
            shown = self.workbench.choose_sample(*self._choice())
        except LsnError as exc:
            self.host.show_error(exc)
            return False
        self._show(shown)
        return True

    def _show(self, shown: dict[str, Any]) -> None:
        lines = []
        for key, value in shown.items():
            if isinstance(value, list):
                value = " | ".join(map(str, value))
            lines.append(f"{key}: {value}")
        self.query_one("#sample-text", Static).update("\n".join(lines))

    def score(self, choice: tuple[str, str, int, str] | None = None) -> None:
        """Score the chosen sample (or `choice`, for a history re-run)."""
        if choice is not None:
            task, lang, sample, data_dir = choice
            with self.prevent(Select.Changed):
                self.query_one("#task", Select).value = task
                self.query_one("#task-lang", Select).value = lang
            self.query_one("#sample", Input).value = str(sample)
            self.query_one("#data-dir", Input).value = data_dir
        if not self.show_sample():
            return
        workbench = self.workbench
        self.run_model_task("scoring", lambda cancel: workbench.score(cancel=cancel), self._scored)

    def rerun(self, request: dict[str, Any]) -> None:
        """Score again the sample of a History entry's request (task, language, sample number) from
        the current data folder, with the current interventions."""
        self.score((request["task"], request["lang"], request["sample"], self.workbench.state.data_dir))

    def _scored(self, score: SampleScore) -> None:
        self._show(score.shown)
        table = self.query_one("#score-table", DataTable)
        if score.task == "xnli":
            tables.fill(table, ["row", "prediction", "correct", "P(entailment)", "P(neutral)", "P(contradiction)"],
                        [[row.label, row.prediction, "yes" if row.correct else "no", *[f"{p:.3f}" for p in row.probabilities]]
                         for row in score.rows])
        else:
            extra = ["token-id F1"] if score.task == "xquad" else []
            tables.fill(table, ["row", "answer", "EM", "F1", *extra],
                        [[row.label, row.prediction or "(empty)", f"{row.exact_match:.0f}", f"{row.f1:.2f}",
                          *([f"{row.token_f1:.2f}"] if extra else [])] for row in score.rows])
        self.post_message(SessionChanged())
