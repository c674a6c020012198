"""The model lane's thread: one model task at a time, on a daemon thread the UI loop awaits.

Not Textual's thread worker: that runs on asyncio's default executor, which `App.run` joins
before it returns, so a quit during work nothing can interrupt (a model load: `from_pretrained`
has no cancel point) left the user's terminal waiting for the load to finish — seconds for the
demo model, a minute for an 8B one — with the load's progress bar drawn over their shell. A
daemon thread is not joined: the app quits at once, asks the task to stop (its cancel event), and
`lsn-explorer tui` ends the process after a one-second grace if the task has not (cli/tui.py).
What the abandoned task had not written is lost, as with any kill; the session's store is
transactional (a write is whole or absent).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

_started: list[threading.Thread] = []  # every lane thread this process started


async def run_in_lane(call: Callable[[threading.Event], Any], cancel: threading.Event) -> Any:
    """`call(cancel)` on a new daemon thread; its result, or its exception raised here."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not outcome.done():  # the awaiting worker may have been cancelled (the app quit)
            if error is None:
                outcome.set_result(result)
            else:
                outcome.set_exception(error)

    def work() -> None:
        result, error = None, None
        try:
            result = call(cancel)
        except BaseException as exc:  # noqa: BLE001 — handed to the awaiting side whatever it is
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop has closed: the app quit while this ran; nobody waits
            pass

    thread = threading.Thread(target=work, name="lsn-model-lane", daemon=True)
    _started[:] = [*(started for started in _started if started.is_alive()), thread]
    thread.start()
    return await outcome


def wait_for_lane(timeout: float) -> bool:
    """Wait up to `timeout` seconds for lane threads still running; True when none is left."""
    for thread in _started:
        thread.join(timeout)
    _started[:] = [thread for thread in _started if thread.is_alive()]
    return not _started
