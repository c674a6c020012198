"""Where a session keeps its jobs' files, and the OS file locks that say which jobs run.

`<session>/jobs/<id>.lock` is held (flock, exclusive) by the job's worker for its whole life; the
kernel drops it when the process ends, however it ends (kill -9 included), so a job row that says
"running" while nobody holds its lock was interrupted. flock, not lockf: an flock belongs to the
open file, so the launcher can take the lock and hand it to the worker it starts (pass_fds)
without a moment where nobody holds it. `<session>/jobs/lane.lock` is the session's one model
lane: a worker holds it while it runs, so a second job waits instead of loading a second model
(waiting jobs take it in the order they were created, see `worker`).
Lock files are never deleted (deleting one lets two processes lock two different files).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from lsn_explorer.core.progress import Cancel

JOBS_DIR = "jobs"
LANE = "lane.lock"
# A probe (`is_held`) holds a shared lock for microseconds; an exclusive attempt that meets one
# retries this long before concluding that a worker holds the lock.
PROBE_PATIENCE_S = 0.3


def jobs_dir(session_folder: Path) -> Path:
    folder = session_folder / JOBS_DIR
    folder.mkdir(exist_ok=True)
    return folder


def lock_path(session_folder: Path, job_id: int) -> Path:
    return jobs_dir(session_folder) / f"{job_id}.lock"


def log_path(session_folder: Path, job_id: int) -> Path:
    return jobs_dir(session_folder) / f"{job_id}.log"


def lane_path(session_folder: Path) -> Path:
    return jobs_dir(session_folder) / LANE


def try_lock(path: Path, patience: float = PROBE_PATIENCE_S) -> int | None:
    """An open descriptor holding an exclusive lock on `path`, or None when someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def wait_lock(path: Path, cancel: Cancel, my_turn: Callable[[], bool] = lambda: True,
              poll: float = 0.1) -> int | None:
    """Block until an exclusive lock on `path` is ours (its descriptor), or None once `cancel`
    is set; only tries while `my_turn()` says so. Polls rather than blocking in flock so that a
    cancel while waiting is seen."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    while not cancel.is_set():
        try:
            if my_turn():
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
        except BlockingIOError:
            pass
        time.sleep(poll)
    os.close(fd)
    return None


def adopt_lock(fd: int, path: Path) -> bool:
    """Whether the inherited descriptor `fd` is an open file of `path` whose exclusive lock we
    hold (flock on a descriptor that already holds the lock succeeds at once)."""
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(path))
        if same:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return same
    except OSError:  # not that file, or its lock is held elsewhere (BlockingIOError)
        return False


def is_held(path: Path) -> bool:
    """Whether some process holds `path`'s exclusive lock (a missing file is not held)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's shared lock
    return False
