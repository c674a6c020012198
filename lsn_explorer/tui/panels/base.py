"""What every panel does when the session, the model, the lane or the records change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from textual.containers import Vertical

if TYPE_CHECKING:
    from lsn_explorer.core.workbench import Workbench
    from lsn_explorer.tui.app import LsnApp


class Panel(Vertical):
    """A tab's content. Subclasses override the hooks they need."""

    DEFAULT_FOCUS = ""  # selector of the widget a tab key focuses

    @property
    def lsn(self) -> LsnApp:
        return self.app  # type: ignore[return-value]

    @property
    def workbench(self) -> Workbench:
        assert self.lsn.workbench is not None, "panels are only used once a session is open"
        return self.lsn.workbench

    def run_model_task(self, label: str, call: Callable[[Any], Any], done: Callable[[Any], None] | None = None) -> bool:
        return self.lsn.run_model_task(label, call, done)

    def on_mount(self) -> None:
        # A panel mounted after the session opened (tabs mount lazily) catches up by itself.
        workbench = self.lsn.workbench
        if workbench is not None:
            self.restore(workbench)
            if workbench.handle is not None:
                self.model_ready()

    def restore(self, workbench: Workbench) -> None:
        """A session was opened: show its state."""

    def model_ready(self) -> None:
        """A model finished loading."""

    def lane_freed(self) -> None:
        """The model lane is free again."""

    def records_changed(self) -> None:
        """Records were added to the session."""

    def focus_default(self) -> None:
        if self.DEFAULT_FOCUS:
            self.query_one(self.DEFAULT_FOCUS).focus()
