"""Fine-tune: a form for a neuron-masked LoRA fine-tune run as a background job — task, training
language, neurons (a stored set from the Neurons tab and one of Mondal et al.'s setups), recipe,
steps and the adapter's name. Launch checks everything first (`Workbench.launch_finetune`, in a
thread worker: reading the training data imports torch): bad input is a notification and the form
stays open; nothing is stored or started. Returns (adapter name, job id) once the job is started,
None when cancelled.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from lsn_explorer.core.finetune.config import RECIPES, SETUPS, TASKS
from lsn_explorer.tui.screens.launch_form import LaunchForm
from lsn_explorer.workbench.finetunes import FinetuneRequest

NO_SET = ""
DEMO_DEFAULTS = ""  # the recipe option of the demo-model defaults
# Hints that name a CLI flag whose field is in this form (see tui/hints.py).
FORM_HINTS = (("--neurons", "choose another set or setup in this form"), ("--name", "type another name in this form"),
              ("--max-steps", "change max steps in this form"), ("--batch", "change the batch in this form"),
              ("--train-data", "choose a language with training data in this form"),
              ("--attention", "choose a neuron set and another setup in this form"))


class FinetuneScreen(LaunchForm):
    LAUNCH_ID = "ft-launch"
    WHAT = "a fine-tune"
    FORM_HINTS = FORM_HINTS

    def compose(self) -> ComposeResult:
        defaults = self.workbench.finetune_defaults()
        sets = self.workbench.neuron_set_names()
        with Vertical(id="finetune-form"):
            yield Label("Fine-tune in the background (Enter or Launch starts the job; Esc closes)", classes="title")
            with Horizontal(classes="form"):
                yield Label("task", classes="field")
                yield Select([(task, task) for task in TASKS], value=defaults.task, allow_blank=False,
                             id="ft-task", compact=True)
                yield Label("train language", classes="field")
                yield Input(defaults.train_lang, placeholder="zh", id="ft-lang", compact=True, classes="small")
            with Horizontal(classes="form"):
                yield Label("neuron set", classes="field")
                yield Select([("(none)", NO_SET)] + [(name, name) for name in sets], value=defaults.neuron_set,
                             allow_blank=False, id="ft-set", compact=True)
                yield Label("setup", classes="field")
                yield Select([(setup, setup) for setup in SETUPS], value=defaults.setup, allow_blank=False,
                             id="ft-setup", compact=True)
                yield Label("source", classes="field")
                yield Input(defaults.source_lang, id="ft-source", compact=True, classes="small")
            with Horizontal(classes="form"):
                yield Label("recipe", classes="field")
                yield Select([("(demo defaults)", DEMO_DEFAULTS)] + [(name, name) for name in RECIPES],
                             value=DEMO_DEFAULTS, allow_blank=False, id="ft-recipe", compact=True)
                yield Label("max steps", classes="field")
                yield Input("", placeholder="all", id="ft-steps", compact=True, classes="small")
                yield Label("batch", classes="field")
                yield Input("", placeholder="8", id="ft-batch", compact=True, classes="small")
            with Horizontal(classes="form"):
                yield Label("name", classes="field")
                yield Input("", placeholder="task-lang-neurons", id="ft-name", compact=True)
            yield Static("Setups (Mondal et al., Table 3), with T the training language and S the source: target = "
                         "the set's T neurons, source = its S neurons, both = S+T, random = as many random neurons "
                         "per layer as T has, none = attention only. LoRA changes only the chosen neurons' rows of "
                         "gate/up and columns of down.", classes="note", markup=False)
            with Horizontal(id="finetune-buttons"):
                yield Button("Launch", id="ft-launch", variant="primary")
                yield Button("Cancel", id="ft-cancel")

    def on_mount(self) -> None:
        self.query_one("#ft-lang", Input).focus()

    def request(self) -> FinetuneRequest:
        text, choice = self.text, self.choice

        request = FinetuneRequest.from_fields(
            task=choice("#ft-task"), train_lang=text("#ft-lang"), neuron_set=choice("#ft-set"),
            setup=choice("#ft-setup"), source_lang=text("#ft-source"), recipe=choice("#ft-recipe"),
            max_steps=text("#ft-steps"), batch=text("#ft-batch"), name=text("#ft-name"))
        request.spec()  # the settings' own checks, before the worker (no torch needed)
        return request

    def start(self, request: Any) -> tuple[str, int]:
        return self.workbench.launch_finetune(request)
