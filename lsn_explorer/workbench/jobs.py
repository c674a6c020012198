"""What a front end's Jobs view shows: one `JobRow` per background job of the session, read
from the job rows (`jobs.control.list_jobs`, torch-free and cheap enough to poll twice a second).

The fraction done and the time left are worked out here, so front ends only draw them. The time
left is the whole job's, estimated from how fast its fraction done grew between reads
(`Estimator`): a worker's own `eta_s` covers only its current step (one language, one cell).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from lsn_explorer.jobs.control import ACTIVE, RESUMABLE
from lsn_explorer.jobs.progress import progress_line
from lsn_explorer.session.store import Job


@dataclass(frozen=True)
class JobRow:
    """One job as the Jobs view lists it."""

    id: int
    kind: str  # stats | eval | finetune
    name: str
    state: str  # queued | running | finished | failed | cancelled | interrupted
    fraction: float | None  # 0–1 of the job's work done; None while nothing is known (queued, loading)
    progress: str  # the last progress as one line (`jobs list` prints the same)
    eta: str  # time left of the whole job ("12 s", "3 min 05 s"); "" when unknown or not running
    can_cancel: bool
    can_resume: bool
    eval_name: str | None  # the evaluation an eval job runs (its results can be opened)
    started: str | None
    ended: str | None
    error: str | None
    losses: tuple[tuple[int, float], ...] = ()  # a fine-tune's recent (step, loss) points, oldest first

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


class Estimator:
    """Time left of running jobs, from their fraction done at successive reads: the speed since
    this front end first saw a job's progress (a resumed job restarts the estimate, so the
    units it skips do not count as speed)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.first: dict[int, tuple[float, float]] = {}  # job id → (time, fraction) first seen running

    def eta_s(self, job_id: int, state: str, fraction: float | None) -> float | None:
        if state != "running" or fraction is None:
            self.first.pop(job_id, None)
            return None
        now = self.clock()
        since, start = self.first.setdefault(job_id, (now, fraction))
        if fraction <= start or now <= since:
            return None
        return (1.0 - fraction) * (now - since) / (fraction - start)


def job_row(job: Job, estimator: Estimator | None = None) -> JobRow:
    """The view of one job row (its `state` already derived: "interrupted" included)."""
    eval_name = job.spec.get("eval_name") if job.kind == "eval" else None
    fraction = fraction_done(job)
    eta_s = estimator.eta_s(job.id, job.state, fraction) if estimator is not None else None
    return JobRow(job.id, job.kind, job.name, job.state, fraction, progress_line(job),
                  duration(eta_s) if eta_s is not None else "", job.state in ACTIVE, job.state in RESUMABLE,
                  str(eval_name) if eval_name else None, job.started, job.ended, job.error, losses(job))


def losses(job: Job) -> tuple[tuple[int, float], ...]:
    """A fine-tune job's recent (step, loss) points (`progress["losses"]`, written by its runner);
    () for other jobs. Malformed points are skipped: a progress row is only ever shown."""
    points = job.progress.get("losses") if job.kind == "finetune" else None
    shown = []
    for point in points if isinstance(points, list) else []:
        if isinstance(point, (list, tuple)) and len(point) == 2 and all(_finite(v) for v in point):
            shown.append((int(point[0]), float(point[1])))
    return tuple(shown)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fraction_done(job: Job) -> float | None:
    """How much of the job is done, 0–1: finished units plus the running unit's share.

    A statistics job's units are languages and its counter the current language's tokens; an
    evaluation reports samples in both (units = samples), so the counter is not added twice.
    """
    if job.state == "finished":
        return 1.0
    p = job.progress
    done, total = int(p.get("done") or 0), int(p.get("total") or 0)
    units_done, units_total = int(p.get("units_done") or 0), int(p.get("units_total") or 0)
    if units_total:
        fraction = units_done / units_total
        if total and (done, total) != (units_done, units_total):
            fraction += min(done / total, 1.0) / units_total
        return min(fraction, 1.0)
    if total:
        return min(done / total, 1.0)
    return None


def duration(seconds: float) -> str:
    """`8 s`, `3 min 05 s`, `2 h 07 min`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
