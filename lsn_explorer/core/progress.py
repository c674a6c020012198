"""The one progress-and-cancel protocol of every long core call.

A long call (statistics, identification, transfer scoring, PPXC, a demo build, scoring) takes
`progress` and `cancel`:
- `progress(label, done, total)`: `label` says what is being worked on (a language, a PPXC row,
  a training phase), `done`/`total` count that call's units (tokens, sentences, cells, steps);
- `cancel`: anything with `is_set()` (a `threading.Event`); the call stops between units and
  raises `Cancelled`, storing nothing unfinished.
`Rate` turns the raw calls into speed and time left, for front ends (CLI bars, the workbench).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol

from lsn_explorer.errors import Cancelled


class Progress(Protocol):
    def __call__(self, label: str, done: int, total: int) -> None: ...


class Cancel(Protocol):
    def is_set(self) -> bool: ...


def stop_if_cancelled(cancel: Cancel | None, what: str) -> None:
    """Raise `Cancelled` ("<what> was cancelled") when the user asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{what} was cancelled", "nothing unfinished was stored; run it again")


@dataclass(frozen=True)
class Step:
    """One progress report with its speed: units per second since `label` started, and the
    seconds left at that speed (None until there is a speed)."""

    label: str
    done: int
    total: int
    per_second: float
    eta_s: float | None


class Rate:
    """Speed and time left of the current label (restarted whenever the label changes).

    Speed counts from the label's first report, so work done before it (a resumed job's
    stored units, the first batch whose start nobody reported) does not inflate it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.label, self.start, self.first = "", 0.0, 0

    def update(self, label: str, done: int, total: int) -> Step:
        now = self.clock()
        if label != self.label:
            self.label, self.start, self.first = label, now, done
        elapsed = now - self.start
        speed = (done - self.first) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / speed if speed > 0 else None
        return Step(label, done, total, speed, eta)
