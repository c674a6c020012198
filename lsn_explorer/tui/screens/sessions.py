"""Session picker: open a recent session or name a new one."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from lsn_explorer.session.store import list_sessions


class SessionScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        found = sorted((s for s in list_sessions(self.root) if "error" not in s),
                       key=lambda s: s["last_change"], reverse=True)
        with Vertical(id="session-picker"):
            yield Label("Open a session", classes="title")
            options = [Option(f"{s['name']:<24} {sum(s['records'].values()):>5} records", id=s["name"]) for s in found]
            yield OptionList(*options, id="session-list")
            yield Label("or start a new one (Enter):", classes="field")
            yield Input(placeholder="session name, e.g. zh-lape", id="session-new")

    def on_mount(self) -> None:
        listed = self.query_one("#session-list", OptionList)
        (listed if listed.option_count else self.query_one("#session-new", Input)).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
