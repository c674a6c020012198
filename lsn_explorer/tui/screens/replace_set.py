"""Asked before a run would store a neuron set under a name that a switched-on row uses: the
rows would silently start meaning the new set. Returns "save_as" (the default), "replace" or None."""

from __future__ import annotations

from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from lsn_explorer.errors import SetInUse

ReplaceChoice = Literal["save_as", "replace"]
CHOICES: dict[str, ReplaceChoice] = {"replace-save-as": "save_as", "replace-replace": "replace"}


class ReplaceSetScreen(ModalScreen[ReplaceChoice | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, error: SetInUse) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        e = self.error
        with Vertical(id="replace-set"):
            yield Label(f"The set {e.name!r} is in use", classes="title")
            yield Static(f"Switched on: {', '.join(e.rows)}. Storing the new set as {e.name!r} would change "
                         "what these rows do in the next generation or score.", markup=False)
            with Horizontal(id="replace-buttons"):
                yield Button(f"Save as {e.free_name}", id="replace-save-as", variant="primary")
                yield Button("Replace (the switched-on rows change)", id="replace-replace", variant="warning")
                yield Button("Cancel", id="replace-cancel")

    def on_mount(self) -> None:
        self.query_one("#replace-save-as", Button).focus()  # Enter takes the safe answer

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(CHOICES.get(event.button.id or ""))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
