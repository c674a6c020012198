"""A job's progress, written to its row in the session store a few times a second.

`ProgressWriter` is the `progress(label, done, total)` callback a runner hands to core, plus
`unit_started` / `unit_finished` for the job's own units (a finished language, a grid cell). Core calls `progress`
after every batch; writing each call would flood the database the app polls, so calls are
collapsed to one write per `interval` (toolong batches its scan progress by time the same way).
A unit boundary, a message and the end of the job are always written. `progress_line` reads it
back as one line, for `jobs list` and the app's Jobs tab.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from lsn_explorer.core.progress import Rate
from lsn_explorer.session.store import Job, Session

WRITE_INTERVAL_S = 0.25  # at most four writes a second


class ProgressWriter:
    """Throttled progress of one job: label, done/total `unit`s, speed, time left, message,
    and the job's units done of total."""

    def __init__(self, session: Session, job_id: int, *, unit: str = "tokens",
                 interval: float = WRITE_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.session, self.job_id, self.interval, self.clock = session, job_id, interval, clock
        self.rate = Rate(clock)
        self.state: dict[str, Any] = {"label": "", "done": 0, "total": 0, "unit": unit, "per_second": 0.0,
                                      "eta_s": None, "message": "", "units_done": 0, "units_total": 0}
        self.last_write: float | None = None
        self.writes = 0

    def __call__(self, label: str, done: int, total: int) -> None:
        step = self.rate.update(label, done, total)
        self.state |= {"label": label, "done": done, "total": total, "per_second": round(step.per_second, 2),
                       "eta_s": None if step.eta_s is None else round(step.eta_s, 1)}
        self._write(force=False)

    def unit_started(self, label: str, done: int, total: int) -> None:
        """A unit (`label`) starts, `done` of the job's `total` being finished (always written)."""
        self.state |= {"label": label, "done": 0, "total": 0, "per_second": 0.0, "eta_s": None,
                       "units_done": done, "units_total": total, "message": f"{label}: started"}
        self._write(force=True)

    def unit_finished(self, done: int, total: int, message: str) -> None:
        """`done` of the job's `total` units are finished; `message` says how the last went."""
        self.state |= {"units_done": done, "units_total": total, "message": message}
        self._write(force=True)

    def message(self, text: str) -> None:
        """Set the last message (always written)."""
        self.state["message"] = text
        self._write(force=True)

    def _write(self, *, force: bool) -> None:
        now = self.clock()
        if not force and self.last_write is not None and now - self.last_write < self.interval:
            return
        self.session.update_job(self.job_id, progress=self.state)
        self.last_write = now
        self.writes += 1


def progress_line(job: Job) -> str:
    """`fr 1,200/4,800 tokens · 310 tokens/s · 12 s left · 1/3 done`, else the error or the last message."""
    p = job.progress
    if job.state == "running" and p.get("total"):
        parts = [f"{p.get('label', '')} {p['done']:,}/{p['total']:,} {p.get('unit', '')}".strip()]
        if p.get("per_second"):
            parts.append(f"{p['per_second']:,.0f} {p.get('unit', '')}/s")
        if p.get("eta_s") is not None:
            parts.append(f"{p['eta_s']:,.0f} s left")
        if p.get("units_total") and (p["units_done"], p["units_total"]) != (p["done"], p["total"]):
            parts.append(f"{p['units_done']}/{p['units_total']} done")
        return " · ".join(parts)
    if job.error:
        return job.error
    return str(p.get("message", ""))
