"""Evaluate: a form for a full evaluation run as a background job — task, languages, limit, and
its rows: the switched-on intervention rows and/or a grid (a stored set × values, plus K matched
random baselines). Launch checks everything first (`Workbench.launch_eval`, in a thread worker):
bad input is a notification and the form stays open; nothing is stored or started.
Returns (evaluation name, job id) once the job is started, None when cancelled.
"""

from __future__ import annotations

import traceback

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from lsn_explorer.core.evals.grid import EVAL_TASKS, GRID_VALUES
from lsn_explorer.errors import LsnError
from lsn_explorer.tui.hints import app_hint
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.evals import EvalRequest

NO_GRID = ""
# Hints that name a CLI flag whose field is in this form (see tui/hints.py).
FORM_HINTS = (("--data-dir", "set the data folder in this form"), ("--langs", "change the languages in this form"),
              ("--name", "type another name in this form"))


class EvaluateScreen(ModalScreen[tuple[str, int] | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench

    def compose(self) -> ComposeResult:
        wb = self.workbench
        defaults = wb.eval_defaults()
        switched = [row.spec for row in wb.state.rows if row.enabled]
        sets = wb.neuron_set_names()
        with Vertical(id="evaluate-form"):
            yield Label("Evaluate in the background (Enter or Launch starts the job; Esc closes)", classes="title")
            with Horizontal(classes="form"):
                yield Label("task", classes="field")
                yield Select([(task, task) for task in EVAL_TASKS], value=defaults.task, allow_blank=False,
                             id="eval-task", compact=True)
                yield Label("limit", classes="field")
                yield Input("", placeholder="every sample", id="eval-limit", compact=True, classes="small")
            with Horizontal(classes="form"):
                yield Label("languages", classes="field")
                yield Input(",".join(defaults.langs), placeholder="en,zh", id="eval-langs", compact=True)
            yield Checkbox(f"the switched-on rows ({', '.join(switched) or 'none is on'})", defaults.switched_on,
                           id="eval-switched", disabled=not switched, compact=True)
            with Horizontal(classes="form"):
                yield Label("grid set", classes="field")
                yield Select([("(no grid)", NO_GRID)] + [(name, name) for name in sets], value=NO_GRID,
                             allow_blank=False, id="eval-set", compact=True)
                yield Label("values", classes="field")
                yield Input(defaults.grid_values, placeholder=", ".join(GRID_VALUES), id="eval-values", compact=True)
            with Horizontal(classes="form"):
                yield Label("random K", classes="field")
                yield Input("0", id="eval-random", compact=True, classes="small")
                yield Label("name", classes="field")
                yield Input("", placeholder=f"{defaults.task}-N", id="eval-name", compact=True)
            with Horizontal(classes="form"):
                yield Label("data folder", classes="field")
                yield Input(defaults.data_dir, placeholder="empty = the demo samples; or a benchmark folder",
                            id="eval-data-dir", compact=True)
            yield Static("Rows: 'none' always; one per switched-on row; one per grid value (language L's cells use "
                         "the set's L neurons and L's statistics); K random sets matched to each grid row.",
                         classes="note", markup=False)
            with Horizontal(id="evaluate-buttons"):
                yield Button("Launch", id="eval-launch", variant="primary")
                yield Button("Cancel", id="eval-cancel")

    def on_mount(self) -> None:
        self.query_one("#eval-limit", Input).focus()

    def request(self) -> EvalRequest:
        def text(selector: str) -> str:
            return self.query_one(selector, Input).value

        return EvalRequest.from_fields(
            task=str(self.query_one("#eval-task", Select).value), langs=text("#eval-langs"),
            switched_on=self.query_one("#eval-switched", Checkbox).value,
            grid_set=str(self.query_one("#eval-set", Select).value), grid_values=text("#eval-values"),
            random_baseline=text("#eval-random"), limit=text("#eval-limit"), name=text("#eval-name"),
            data_dir=text("#eval-data-dir"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.launch()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "eval-launch":
            self.launch()
        else:
            self.dismiss(None)

    def launch(self) -> None:
        button = self.query_one("#eval-launch", Button)
        if button.disabled:
            return  # a launch is being checked
        try:
            request = self.request()
        except LsnError as exc:
            self._refused(exc)
            return
        button.disabled = True
        self._launch(request)

    @work(thread=True, group="evaluate", exit_on_error=False)
    def _launch(self, request: EvalRequest) -> None:
        try:
            started = self.workbench.launch_eval(request)
        except LsnError as exc:
            self.app.call_from_thread(self._refused, exc)
            return
        except Exception as exc:  # a bug: keep the app alive and the traceback in the session
            self.workbench.session.log(f"launching an evaluation failed:\n{traceback.format_exc()}", level="error")
            self.app.call_from_thread(self._refused, LsnError(f"launching failed unexpectedly: {exc}",
                                                              "the traceback is in the session's events"))
            return
        self.app.call_from_thread(self.dismiss, started)

    def _refused(self, exc: LsnError) -> None:
        self.query_one("#eval-launch", Button).disabled = False
        hint = app_hint(exc.hint, FORM_HINTS)
        self.notify(exc.message + (f"\n{hint}" if hint else ""), title="not launched", severity="error", timeout=8,
                    markup=False)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
