"""A job's log (the last lines its worker wrote, every attempt appended), read-only."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class JobLogScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,l,q", "dismiss", "Close")]

    def __init__(self, title: str, lines: list[str]) -> None:
        super().__init__()
        self.title_text, self.lines = title, lines

    def compose(self) -> ComposeResult:
        with Vertical(id="job-log"):
            yield Label(f"{self.title_text} — log (Esc closes)", classes="title")
            with VerticalScroll(id="job-log-box"):
                yield Static("\n".join(self.lines) or "(the log is empty)", id="job-log-text", markup=False)

    def on_mount(self) -> None:
        self.query_one("#job-log-box", VerticalScroll).scroll_end(animate=False)
