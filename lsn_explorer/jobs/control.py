"""Starting and watching jobs: launch, status, list, cancel, resume, wait, log.

What front ends (the CLI, the app) call. The real state of a job comes from its row and its lock
together: a row that says queued or running while nobody holds the job's lock belongs to a worker
that died without recording its end (kill -9, a reboot, out of memory): "interrupted".
Torch-free: listing jobs never loads a model.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import deque
from typing import Any, Literal

from lsn_explorer.errors import JobError
from lsn_explorer.jobs.locks import is_held, lock_path, log_path, try_lock
from lsn_explorer.jobs.spec import JobSpec, spec_from_json
from lsn_explorer.jobs.worker import STOP_SIGNALS
from lsn_explorer.session.store import Job, Session

State = Literal["queued", "running", "finished", "failed", "cancelled", "interrupted"]
ACTIVE = ("queued", "running")
RESUMABLE = ("interrupted", "cancelled", "failed")
EXIT_GRACE_S = 10.0  # how long a worker that recorded its end may take to exit

# Workers this process started. A detached worker is still our child: it is reaped (polled)
# here so that a long-lived launcher, the app, does not collect zombies.
_children: list[subprocess.Popen[bytes]] = []


def launch(session: Session, spec: JobSpec) -> int:
    """Store a new job for `spec` and start its worker; returns the job id at once."""
    job = session.add_job(spec.KIND, spec.title(), spec.to_json())
    start(session, job.id)
    return job.id


def start(session: Session, job_id: int) -> int:
    """Start a worker for the stored job `job_id`; returns its pid.

    The job's lock is taken here and handed to the worker (`pass_fds`), so of two calls at once
    exactly one starts a worker and the other is refused.

    Raises:
        JobError: the job's lock is held (its worker runs), or the worker could not be started.
    """
    _reap()
    fd = try_lock(lock_path(session.folder, job_id))
    if fd is None and _exiting(session, job_id):
        fd = try_lock(lock_path(session.folder, job_id))
    if fd is None:
        raise JobError(f"job {job_id} is already running", _hint_running(session, job_id))
    job = session.job(job_id)
    if job is not None and job.state == "finished":  # it finished while we waited for its lock
        os.close(fd)
        raise JobError(f"job {job_id} has already finished; there is nothing to resume",
                       f"see it with `lsn-explorer jobs show {job_id} --session {session.name}`")
    try:
        session.update_job(job_id, state="queued", pid=None, ended=None, error=None)
        command = [sys.executable, "-m", "lsn_explorer.jobs", "run", "--session", session.name,
                   "--job", str(job_id), "--sessions-dir", str(session.folder.parent.resolve()),
                   "--lock-fd", str(fd)]
        # The worker is born with SIGTERM and SIGINT blocked (a signal mask survives fork and
        # exec) and unblocks them once its handler is in place: a cancel sent while it is still
        # starting waits for the handler instead of killing it unrecorded ("interrupted").
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            with open(log_path(session.folder, job_id), "ab") as log:
                # A new session (process group) of its own: closing the app or the terminal, or a
                # Ctrl+C there, does not reach the worker.
                worker = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, pass_fds=(fd,))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    except OSError as exc:
        session.update_job(job_id, state="failed", error=f"could not start the worker: {exc.strerror or exc}")
        raise JobError(f"could not start a worker for job {job_id}: {exc.strerror or exc}",
                       "check that the session folder is writable and the Python environment is intact") from None
    finally:
        os.close(fd)  # the worker holds the lock through its own copy of the descriptor
    session.update_job(job_id, pid=worker.pid)
    _children.append(worker)
    return worker.pid


def status(session: Session, job_id: int) -> Job:
    """The job with its real state (see the module doc for "interrupted").

    Raises:
        JobError: the session has no job `job_id`.
    """
    _reap()
    job = session.job(job_id)
    if job is None:
        known = [j.id for j in session.jobs()]
        raise JobError(f"session {session.name!r} has no job {job_id}",
                       f"its jobs: {', '.join(map(str, known))}" if known else
                       f"it has no jobs; start one with `lsn-explorer stats --session {session.name} ... --detach`")
    return _derived(session, job)


def list_jobs(session: Session) -> list[Job]:
    """Every job of the session with its real state, oldest first."""
    _reap()
    return [_derived(session, job) for job in session.jobs()]


def cancel(session: Session, job_id: int) -> Job:
    """Ask a queued or running job to stop (SIGTERM to its worker's process group); it records
    "cancelled" after the current batch, keeping every finished unit.

    Raises:
        JobError: the job is not running.
    """
    job = status(session, job_id)
    if job.state not in ACTIVE:
        hint = (f"resume it with `lsn-explorer jobs resume {job_id} --session {session.name}`"
                if job.state in RESUMABLE else f"see `lsn-explorer jobs show {job_id} --session {session.name}`")
        raise JobError(f"job {job_id} is not running (it is {job.state})", hint)
    if job.pid is None:
        raise JobError(f"job {job_id} is starting", "try again in a moment")
    try:
        # A launched worker leads its own process group; one started by hand may not.
        if os.getpgid(job.pid) == job.pid:
            os.killpg(job.pid, signal.SIGTERM)
        else:
            os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended between the lock probe and the signal; its row says how
    return job


def resume(session: Session, job_id: int) -> int:
    """Start an interrupted, cancelled or failed job again under the same id; returns the pid.
    Its finished units are skipped by the runner (each is stored once, under its own key).

    Raises:
        JobError: the job runs, waits in the queue, or has finished; or its kind is unknown.
    """
    job = status(session, job_id)
    if job.state in ACTIVE:
        raise JobError(f"job {job_id} is already {job.state} (pid {job.pid})", _hint_running(session, job_id))
    if job.state == "finished":
        raise JobError(f"job {job_id} has already finished; there is nothing to resume",
                       f"see its results with `lsn-explorer jobs show {job_id} --session {session.name}`, "
                       "or start a new job to run it again")
    spec_from_json(job.spec, source=f"job {job_id}")  # a kind this version cannot run fails here
    return start(session, job_id)


def wait(session: Session, job_id: int, timeout: float | None = None, poll: float = 0.2) -> Job:
    """Poll until the job is no longer queued or running; returns it.

    Raises:
        JobError: still running after `timeout` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = status(session, job_id)
        if job.state not in ACTIVE:
            _exiting(session, job_id)  # and gone: a `resume` right after must not find it running
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise JobError(f"job {job_id} is still {job.state} after {timeout:g} s",
                           "wait longer (--timeout), or follow it with `lsn-explorer jobs show`")
        time.sleep(poll)


def tail(session: Session, job_id: int, lines: int = 40) -> list[str]:
    """The last `lines` lines of the job's log (every attempt appends to it)."""
    status(session, job_id)
    path = log_path(session.folder, job_id)
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in deque(f, maxlen=lines)]


def describe(session: Session, job: Job) -> dict[str, Any]:
    """A job as plain data (`jobs show --json`): the pid only while its worker lives."""
    return {"id": job.id, "kind": job.kind, "name": job.name, "state": job.state, "progress": job.progress,
            "pid": job.pid if job.state in ACTIVE else None, "log": str(log_path(session.folder, job.id).resolve()),
            "created": job.created, "started": job.started, "ended": job.ended, "error": job.error,
            "spec": job.spec}


def _exiting(session: Session, job_id: int, grace: float = EXIT_GRACE_S) -> bool:
    """Whether the job's worker, having recorded its end, let go of the lock within `grace`
    seconds: it records the end first and exits after, so `jobs wait` then `jobs resume` at once
    would otherwise find the lock still held for a moment."""
    job = session.job(job_id)
    if job is None or job.state in ACTIVE:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_held(lock_path(session.folder, job_id)):
            return True
        time.sleep(0.05)
    return False


def _derived(session: Session, job: Job) -> Job:
    if job.state not in ACTIVE or is_held(lock_path(session.folder, job.id)):
        return job
    # The worker records its end before it exits (and so before its lock is freed): read the row
    # again, now that the lock is known free, so a job that just finished is not called interrupted.
    again = session.job(job.id) or job
    return dataclasses.replace(again, state="interrupted") if again.state in ACTIVE else again


def _hint_running(session: Session, job_id: int) -> str:
    return (f"wait for it with `lsn-explorer jobs wait {job_id} --session {session.name}`, "
            f"or stop it with `lsn-explorer jobs cancel {job_id} --session {session.name}`")


def _reap() -> None:
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)
