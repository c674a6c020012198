"""The job worker: `python -m lsn_explorer.jobs run --session S --job ID [--sessions-dir D]`.

One process per job, started detached by `control.start` (or by hand). In order, it:
1. turns SIGTERM / SIGINT into a cancel event that core checks between batches (the launcher
   starts it with both blocked, so none is lost, and none kills it, before this handler is set);
2. holds the job's lock for its whole life (handed over by the launcher with `--lock-fd`, else
   taken here; held elsewhere → refused: the job already runs);
3. appends its output to `<session>/jobs/<id>.log`;
4. waits, state "queued", for the session's model lane, so jobs of one session run one at a time,
   in the order they were created;
5. runs the kind's runner, state "running", progress written a few times a second;
6. records "finished", "failed" (the one-line error) or "cancelled", and only then exits, which
   releases the locks: a job whose row still says running once its lock is free was killed.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

from lsn_explorer.errors import Cancelled, JobError, LsnError
from lsn_explorer.jobs.locks import adopt_lock, is_held, lane_path, lock_path, log_path, try_lock, wait_lock
from lsn_explorer.jobs.progress import ProgressWriter
from lsn_explorer.jobs.runners import RUNNERS
from lsn_explorer.jobs.spec import spec_from_json
from lsn_explorer.session.store import Session, now

# Exit statuses (nobody waits on a detached worker; they help whoever runs one by hand).
FINISHED, FAILED, REFUSED, CANCELLED = 0, 1, 2, 3
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}  # both mean: cancel, between two batches


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lsn_explorer.jobs",
                                     description="Run one background job of a session (started by `lsn-explorer`).")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or continue) the job ID of session S")
    run.add_argument("--session", required=True)
    run.add_argument("--job", type=int, required=True)
    run.add_argument("--sessions-dir", default=None)
    run.add_argument("--lock-fd", type=int, default=None, help=argparse.SUPPRESS)  # the launcher's lock
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_job(args.session, args.job, args.sessions_dir, lock_fd=args.lock_fd)
    except LsnError as exc:  # refused before the job started: nothing was recorded
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return REFUSED


def run_job(session_name: str, job_id: int, sessions_dir: str | None = None, *, lock_fd: int | None = None) -> int:
    """Run the job `job_id` of a session to its end; returns the exit status.

    Raises:
        JobError: no such job, the job has finished, or another worker holds its lock (refused
            before anything is recorded; later failures are recorded in the job's row).
    """
    cancel = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: cancel.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # the launcher starts us with them blocked
    with Session.open(session_name, sessions_dir, create=False) as session:
        job = session.job(job_id)
        if job is None:
            raise JobError(f"session {session.name!r} has no job {job_id}", "see `lsn-explorer jobs list`")
        path = lock_path(session.folder, job_id)
        if lock_fd is not None and not adopt_lock(lock_fd, path):
            raise JobError(f"descriptor {lock_fd} does not hold the lock of job {job_id}",
                           "start jobs with `lsn-explorer jobs resume`, which hands the lock over")
        held = lock_fd if lock_fd is not None else try_lock(path)
        if held is None:
            raise JobError(f"job {job_id} is already running in another process",
                           f"wait for it: `lsn-explorer jobs wait {job_id} --session {session.name}`")
        if job.state == "finished":
            raise JobError(f"job {job_id} has already finished", "start a new job to run it again")
        to_log(log_path(session.folder, job_id))
        print(f"--- job {job_id} ({job.name}) pid {os.getpid()} {now()} ---", flush=True)
        session.update_job(job_id, state="queued", pid=os.getpid(), ended=None, error=None)
        progress = ProgressWriter(session, job_id)
        try:
            spec = spec_from_json(job.spec, source=f"job {job_id}")
        except LsnError as exc:  # written by a newer lsn-explorer, or edited by hand
            return _failed(session, job_id, exc, progress)
        lane = wait_lock(lane_path(session.folder), cancel, lambda: _my_turn(session, job_id))
        if lane is None:
            progress.state["message"] = "cancelled while queued"
            return _end(session, job_id, "cancelled", None, progress)
        session.update_job(job_id, state="running", started=now())
        try:
            summary = RUNNERS[spec.KIND](session, spec, progress, cancel)
        except Cancelled:
            done, total = progress.state["units_done"], progress.state["units_total"]
            progress.state["message"] = f"cancelled after {done} of {total} units"
            return _end(session, job_id, "cancelled", None, progress)
        except LsnError as exc:
            return _failed(session, job_id, exc, progress)
        except Exception as exc:  # a bug: its traceback goes to the log and the session's events
            text = traceback.format_exc()
            print(text, file=sys.stderr, flush=True)
            session.log(f"job {job_id} failed unexpectedly:\n{text}", level="error")
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return _end(session, job_id, "failed", f"{type(exc).__name__}: {first}".rstrip(": "), progress)
        progress.state["message"] = summary
        return _end(session, job_id, "finished", None, progress)


def _my_turn(session: Session, job_id: int) -> bool:
    """First come, first served: wait while an older job of the session waits for the lane too
    (queued, and its lock held: a queued row without a live worker was interrupted)."""
    return not any(job.id < job_id and job.state == "queued" and is_held(lock_path(session.folder, job.id))
                   for job in session.jobs())


def _failed(session: Session, job_id: int, exc: LsnError, progress: ProgressWriter) -> int:
    print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
    return _end(session, job_id, "failed", str(exc), progress)


def _end(session: Session, job_id: int, state: str, error: str | None, progress: ProgressWriter) -> int:
    """Record the final state with the last progress (throttled writes may have skipped it);
    the process exits right after, which releases the locks."""
    session.update_job(job_id, state=state, ended=now(), error=error, progress=progress.state)
    print(f"--- job {job_id} {state}{': ' + error if error else ''} {now()} ---", flush=True)
    return {"finished": FINISHED, "failed": FAILED, "cancelled": CANCELLED}[state]


def to_log(path: Path) -> None:
    """Send this process's stdout and stderr (Python's and the libraries') to the job's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
