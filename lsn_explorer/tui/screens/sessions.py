"""Session picker: open a recent session or name a new one.

A session that cannot be opened (not a database, written by a newer lsn-explorer) is listed
too, marked with ⚠ and its reason, so it does not seem to have vanished; choosing it explains
instead of opening it.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from lsn_explorer.errors import LsnError
from lsn_explorer.session.store import DB_NAME, Session, default_root, list_sessions


class SessionScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__()
        self.root = root
        self.broken: dict[str, str] = {}  # sessions that cannot be opened: name → reason

    def compose(self) -> ComposeResult:
        listed = list_sessions(self.root)
        found = sorted((s for s in listed if "error" not in s), key=lambda s: s["last_change"], reverse=True)
        self.broken = {s["name"]: s["error"] for s in listed if "error" in s}
        root = Path(self.root) if self.root is not None else default_root()
        with Vertical(id="session-picker"):
            yield Label("Open a session", classes="title")
            options = [Option(f"{s['name']:<24} {sum(s['records'].values()):>5} records", id=s["name"]) for s in found]
            # The reason names the database by its full path; the name before it already says which.
            options += [Option(f"⚠ {name} — {reason.replace(str(root / name / DB_NAME), DB_NAME)}", id=name)
                        for name, reason in sorted(self.broken.items())]
            yield OptionList(*options, id="session-list")
            yield Label("or start a new one (Enter):", classes="field")
            yield Input(placeholder="session name, e.g. zh-lape", id="session-new")

    def on_mount(self) -> None:
        listed = self.query_one("#session-list", OptionList)
        (listed if listed.option_count else self.query_one("#session-new", Input)).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if name in self.broken:
            try:  # asked again for the reason and its hint; it refuses before writing anything
                Session.open(name, self.root, create=False).close()
            except LsnError as exc:
                self.app.show_error(exc)  # type: ignore[attr-defined]
                return
        self.dismiss(name)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
