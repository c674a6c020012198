"""What the job forms (Evaluate, Fine-tune) share: a modal form whose Launch button checks the
fields, then starts the job in a thread worker (the checks read data files and the session);
bad input is a notification and the form stays open, nothing stored or started. The form returns
(name, job id) once the job is started, None when cancelled.
"""

from __future__ import annotations

import traceback
from typing import Any, ClassVar

from textual import work
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select

from lsn_explorer.errors import LsnError
from lsn_explorer.tui.hints import app_hint
from lsn_explorer.workbench.bench import Workbench


class LaunchForm(ModalScreen[tuple[str, int] | None]):
    """Subclasses compose the fields and give `request()` (the checked fields) and `start()`."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]
    LAUNCH_ID: ClassVar[str]  # the Launch button's id
    WHAT: ClassVar[str]  # "an evaluation", for the unexpected-failure message
    FORM_HINTS: ClassVar[tuple[tuple[str, str], ...]] = ()  # CLI flags whose field is in the form

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench

    def request(self) -> Any:
        """The form's fields as a request, checked as far as can be without the session (LsnError)."""
        raise NotImplementedError

    def start(self, request: Any) -> tuple[str, int]:
        """Launch the job (in the worker thread); returns (name, job id)."""
        raise NotImplementedError

    def text(self, selector: str) -> str:
        """What an Input field of the form holds."""
        return self.query_one(selector, Input).value

    def choice(self, selector: str) -> str:
        """What a Select field of the form holds."""
        return str(self.query_one(selector, Select).value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.launch()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.LAUNCH_ID:
            self.launch()
        else:
            self.dismiss(None)

    def launch(self) -> None:
        button = self.query_one(f"#{self.LAUNCH_ID}", Button)
        if button.disabled:
            return  # a launch is being checked
        try:
            request = self.request()
        except LsnError as exc:
            self._refused(exc)
            return
        button.disabled = True
        self._launch(request)

    @work(thread=True, group="launch", exit_on_error=False)
    def _launch(self, request: Any) -> None:
        try:
            started = self.start(request)
        except LsnError as exc:
            self.app.call_from_thread(self._refused, exc)
            return
        except Exception as exc:  # a bug: keep the app alive and the traceback in the session
            self.workbench.session.log(f"launching {self.WHAT} failed:\n{traceback.format_exc()}", level="error")
            self.app.call_from_thread(self._refused, LsnError(f"launching failed unexpectedly: {exc}",
                                                              "the traceback is in the session's events"))
            return
        self.app.call_from_thread(self.dismiss, started)

    def _refused(self, exc: LsnError) -> None:
        self.query_one(f"#{self.LAUNCH_ID}", Button).disabled = False
        hint = app_hint(exc.hint, self.FORM_HINTS)
        self.notify(exc.message + (f"\n{hint}" if hint else ""), title="not launched", severity="error", timeout=8,
                    markup=False)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
