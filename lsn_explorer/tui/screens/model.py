"""Open a model: a Hugging Face id or a local checkpoint folder, optionally in 4-bit."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label


class ModelScreen(ModalScreen[tuple[str, bool] | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="model-picker"):
            yield Label("Open a model (Enter loads it; empty = the demo model)", classes="title")
            yield Input(placeholder="meta-llama/Llama-3.1-8B or /path/to/checkpoint", id="model-source")
            yield Checkbox("4-bit NF4 (bitsandbytes)", id="model-4bit")

    def on_mount(self) -> None:
        self.query_one("#model-source", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss((event.value.strip(), self.query_one("#model-4bit", Checkbox).value))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
