"""Evaluate: a form for a full evaluation run as a background job — task, languages, limit, the
adapter (a fine-tune of the session, or the base model), and its rows: the switched-on
intervention rows and/or a grid (a stored set × values, plus K matched random baselines). Launch
checks everything first (`Workbench.launch_eval`, in a thread worker): bad input is a notification
and the form stays open; nothing is stored or started. Returns (evaluation name, job id) once the
job is started, None when cancelled.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from lsn_explorer.core.evals.grid import EVAL_TASKS, GRID_VALUES
from lsn_explorer.tui.screens.launch_form import LaunchForm
from lsn_explorer.workbench.evals import EvalRequest

NO_GRID = ""
BASE_MODEL = ""
# Hints that name a CLI flag whose field is in this form (see tui/hints.py).
FORM_HINTS = (("--data-dir", "set the data folder in this form"), ("--langs", "change the languages in this form"),
              ("--name", "type another name in this form"))


class EvaluateScreen(LaunchForm):
    LAUNCH_ID = "eval-launch"
    WHAT = "an evaluation"
    FORM_HINTS = FORM_HINTS

    def compose(self) -> ComposeResult:
        wb = self.workbench
        defaults = wb.eval_defaults()
        switched = [row.spec for row in wb.state.rows if row.enabled]
        sets = wb.neuron_set_names()
        adapters = [(row.label, row.name) for row in wb.adapters()]
        if defaults.adapter and defaults.adapter not in {name for _, name in adapters}:
            defaults = replace(defaults, adapter="")  # the chosen adapter's record is gone
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
            with Horizontal(classes="form"):
                yield Label("adapter", classes="field")
                yield Select([("(base model)", BASE_MODEL)] + adapters, value=defaults.adapter or BASE_MODEL,
                             allow_blank=False, id="eval-adapter", compact=True)
            yield Static("Rows: 'none' always; one per switched-on row; one per grid value (language L's cells use "
                         "the set's L neurons and L's statistics); K random sets matched to each grid row.",
                         classes="note", markup=False)
            with Horizontal(id="evaluate-buttons"):
                yield Button("Launch", id="eval-launch", variant="primary")
                yield Button("Cancel", id="eval-cancel")

    def on_mount(self) -> None:
        self.query_one("#eval-limit", Input).focus()

    def request(self) -> EvalRequest:
        text, choice = self.text, self.choice
        return EvalRequest.from_fields(
            task=choice("#eval-task"), langs=text("#eval-langs"),
            switched_on=self.query_one("#eval-switched", Checkbox).value,
            grid_set=choice("#eval-set"), grid_values=text("#eval-values"),
            random_baseline=text("#eval-random"), limit=text("#eval-limit"), name=text("#eval-name"),
            data_dir=text("#eval-data-dir"), adapter=choice("#eval-adapter"))

    def start(self, request: Any) -> tuple[str, int]:
        return self.workbench.launch_eval(request)
