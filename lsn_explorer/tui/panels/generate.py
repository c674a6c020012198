"""Generate: one prompt, two panes — without and with the switched-on interventions — streamed
from one batched run with the same seed; each pane ends with its script mix and perplexity."""

from __future__ import annotations

from collections import deque
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Static

from lsn_explorer.core.generate import Continuation, Generation, TokenEvent
from lsn_explorer.errors import LsnError
from lsn_explorer.tui.messages import SessionChanged
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.tui.widgets.adapter_picker import AdapterPicker
from lsn_explorer.workbench.bench import Workbench

# Streamed text reaches the panes at most 10 times a second: each update lays out the screen again,
# and at 20 a second those layouts left little time for keys (issue 17).
FLUSH_S = 0.1


class Pane(Vertical):
    """One row's continuation as it streams."""

    def __init__(self, title: str, **kwargs: Any) -> None:
        super().__init__(classes="pane", **kwargs)
        self.title_text = title
        self.text = ""
        self.prompt = ""

    def compose(self) -> ComposeResult:
        yield Label(self.title_text, classes="pane-title")
        with VerticalScroll(classes="pane-body"):
            yield Static("", classes="pane-text", markup=False)
        yield Static("", classes="pane-footer", markup=False)

    def reset(self, title: str, prompt: str) -> None:
        self.text = ""
        self.query_one(".pane-title", Label).update(title)
        self.query_one(".pane-text", Static).update(prompt)
        self.query_one(".pane-footer", Static).update("")
        self.prompt = prompt

    def append(self, text: str) -> None:
        self.text += text
        self.query_one(".pane-text", Static).update(f"{self.prompt}{self.text}")

    def finish(self, row: Continuation | None, cancelled: bool) -> None:
        if row is None:
            self.query_one(".pane-footer", Static).update("")
            return
        mix = " · ".join(f"{name} {share:.0%}" for name, share in row.scripts.items()) or "no letters"
        note = " · cancelled" if cancelled else ""
        self.query_one(".pane-footer", Static).update(
            f"{len(row.token_ids)} tokens · scripts: {mix} · PPL {row.perplexity:.1f}{note}")


def _prompt_shown(prompt: str) -> str:
    return f"» {prompt}"


class GeneratePanel(Panel):
    DEFAULT_FOCUS = "#prompt"

    def __init__(self) -> None:
        super().__init__()
        self._pending: deque[TokenEvent] = deque()
        self._drain: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="form"):
            yield Label("prompt", classes="field")
            yield Input(placeholder="type a prompt, Enter or Ctrl+G generates; Esc cancels", id="prompt",
                        compact=True)
        with Horizontal(classes="form"):
            yield Label("new tokens", classes="field")
            yield Input("32", id="max-new-tokens", type="integer", compact=True, classes="small")
            yield Label("temperature", classes="field")
            yield Input("0", id="temperature", type="number", compact=True, classes="small")
            yield Label("seed", classes="field")
            yield Input("0", id="seed", type="integer", compact=True, classes="small")
            yield Label("adapter", classes="field short")
            yield AdapterPicker(id="generate-adapter")
            yield Button("Generate (Ctrl+G)", id="generate-run", variant="primary", compact=True)
        with Horizontal(id="panes"):
            yield Pane("without interventions", id="pane-baseline")
            yield Pane("with interventions", id="pane-intervened")

    def restore(self, workbench: Workbench) -> None:
        state = workbench.state
        self.query_one("#prompt", Input).value = state.prompt
        self.query_one("#max-new-tokens", Input).value = str(state.max_new_tokens)
        self.query_one("#temperature", Input).value = f"{state.temperature:g}"
        self.query_one("#seed", Input).value = str(state.seed)
        self.query_one(AdapterPicker).sync(workbench)

    def model_ready(self) -> None:
        self.query_one(AdapterPicker).sync(self.workbench)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "generate-run":
            self.start()

    def start(self, prompt: str | None = None, settings: dict[str, Any] | None = None) -> None:
        """Generate from the prompt box (or `prompt` and `settings`, for a history re-run)."""
        try:
            if prompt is None:
                prompt = self.query_one("#prompt", Input).value
                settings = self._settings()
            else:
                self.query_one("#prompt", Input).value = prompt
        except LsnError as exc:
            self.host.show_error(exc)
            return
        settings = settings or {}
        workbench = self.workbench
        try:
            labels = [iv.label for iv in workbench.active()]
        except LsnError as exc:
            self.host.show_error(exc)
            return
        baseline = self.query_one("#pane-baseline", Pane)
        intervened = self.query_one("#pane-intervened", Pane)

        def call(cancel: Any) -> Generation:
            # Tokens wait in a list the UI drains on a timer: bursts become one repaint, and the
            # worker never blocks on the UI thread.
            return workbench.generate(prompt, **settings, cancel=cancel, on_token=self._pending.append)

        self._pending = deque()
        if self.run_model_task("generating", call, self._finished):
            self._drain = self.set_interval(FLUSH_S, self._flush)
            baseline.reset("without interventions", _prompt_shown(prompt))
            intervened.reset("with " + " + ".join(labels) if labels else "with interventions: none switched on",
                             _prompt_shown(prompt) if labels else "")

    def rerun(self, request: dict[str, Any]) -> None:
        """Generate again from a History entry's request (its prompt and settings), with the current
        interventions."""
        settings = {"max_new_tokens": request["max_new_tokens"], "temperature": request["temperature"],
                    "seed": request["seed"]}
        self.start(request["prompt"], settings)

    def _settings(self) -> dict[str, Any]:
        def number(widget_id: str, kind: type, name: str, hint: str) -> Any:
            text = self.query_one(widget_id, Input).value.strip()
            try:
                return kind(text)
            except ValueError:
                raise LsnError(f"{name} {text!r} is not a number", hint) from None

        settings = {"max_new_tokens": number("#max-new-tokens", int, "new tokens", "e.g. 32"),
                    "temperature": number("#temperature", float, "temperature", "0 is greedy"),
                    "seed": number("#seed", int, "seed", "any whole number")}
        if settings["max_new_tokens"] < 1:  # checked here: the core's message names the CLI flag
            raise LsnError("new tokens must be at least 1", "e.g. 32")
        return settings

    def on_show(self) -> None:
        self._flush()  # what streamed while another tab was in front

    def _flush(self, *, hidden_too: bool = False) -> None:
        if not (hidden_too or self.in_front()):
            return  # tokens wait in the queue: a hidden pane's update would still lay out the screen
        texts = ["", ""]
        while self._pending:  # popleft is atomic: the worker may append meanwhile
            event = self._pending.popleft()
            texts[min(event.row, 1)] += event.text
        for pane_id, text in zip(("#pane-baseline", "#pane-intervened"), texts):
            if text:
                self.query_one(pane_id, Pane).append(text)

    def lane_freed(self, cancelled: bool) -> None:
        if self._drain is not None:
            self._drain.stop()
            self._drain = None
            self._flush(hidden_too=True)

    def _finished(self, generation: Generation) -> None:
        self._flush(hidden_too=True)
        rows = generation.rows
        self.query_one("#pane-baseline", Pane).finish(rows[0], generation.cancelled)
        self.query_one("#pane-intervened", Pane).finish(rows[1] if len(rows) > 1 else None, generation.cancelled)
        self.post_message(SessionChanged())
