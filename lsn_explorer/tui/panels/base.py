"""What every panel does when the session, the model, the lane or the records change.

A panel reaches the app only as a `PanelHost` (never by importing the app), and reaches sibling
panels only by posting a message the app routes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, cast

from textual.containers import Vertical
from textual.widget import Widget

from lsn_explorer.tui.host import PanelHost

if TYPE_CHECKING:
    from lsn_explorer.workbench.bench import Workbench


PROGRESS_S = 0.25  # a worker's progress reaches a panel at most 4 times a second (toolong's batch_time)
IDLE_TOTAL = 1  # a progress bar's total before and after a run: a plain bar, not the indeterminate animation


class Throttle:
    """Lets a worker's progress reports through at most once per `interval` seconds, so a fast
    loop does not flood the UI thread; the final report of a pass always goes through."""

    def __init__(self, interval: float = PROGRESS_S) -> None:
        self.interval = interval
        self.last = float("-inf")

    def due(self, final: bool = False) -> bool:
        now = time.monotonic()
        if final or now - self.last >= self.interval:
            self.last = now
            return True
        return False


class Panel(Vertical):
    """A tab's content. Subclasses override the hooks they need."""

    DEFAULT_FOCUS = ""  # selector of the widget a tab key focuses

    @property
    def host(self) -> PanelHost:
        """The app holding this panel, as far as panels may use it."""
        return cast(PanelHost, self.app)

    @property
    def workbench(self) -> Workbench:
        assert self.host.workbench is not None, "panels are only used once a session is open"
        return self.host.workbench

    def run_model_task(self, label: str, call: Callable[[Any], Any], done: Callable[[Any], None] | None = None) -> bool:
        return self.host.run_model_task(label, call, done)

    def on_mount(self) -> None:
        # A panel mounted after the session opened (tabs mount lazily) catches up by itself.
        workbench = self.host.workbench
        if workbench is not None:
            self.restore(workbench)
            if workbench.handle is not None:
                self.model_ready()

    def restore(self, workbench: Workbench) -> None:
        """A session was opened: show its state."""

    def model_ready(self) -> None:
        """A model finished loading."""

    def lane_freed(self, cancelled: bool) -> None:
        """The model lane is free again (`cancelled`: the user pressed Esc while it ran)."""

    def records_changed(self) -> None:
        """Records were added to the session."""

    def in_front(self) -> bool:
        """Whether this panel's tab is the one shown (its pane is hidden otherwise)."""
        return all(node.display for node in self.ancestors_with_self if isinstance(node, Widget))

    def focus_default(self) -> None:
        if self.DEFAULT_FOCUS:
            self.query_one(self.DEFAULT_FOCUS).focus()
