"""`PanelHost`: what a panel needs from the app that holds it, and nothing more.

Panels type against this protocol and never import `lsn_explorer.tui.app`; the app implements it
(structurally, without subclassing it). Textual's own `App` API (`push_screen`, `call_from_thread`,
`notify`, `focused`) is reached through `Widget.app` and is not repeated here. A panel that wants
something from a sibling panel posts a message from `messages.py`; the app routes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    import threading

    from lsn_explorer.errors import LsnError
    from lsn_explorer.workbench.bench import Workbench


@runtime_checkable
class PanelHost(Protocol):
    """The app as its panels see it: the open workbench, the one model lane, error notifications."""

    @property
    def workbench(self) -> Workbench | None:
        """The open session's workbench (None before a session is open)."""

    def run_model_task(self, label: str, call: Callable[[threading.Event], Any],
                       done: Callable[[Any], None] | None = None) -> bool:
        """Run `call(cancel)` in the model worker, `done(result)` on the UI thread; False when refused."""

    def lane_free(self) -> bool:
        """True when a model task could start now; otherwise says why (a notification)."""

    def show_error(self, exc: LsnError) -> None:
        """Notify the user of a failure, its hint said the app's way."""
