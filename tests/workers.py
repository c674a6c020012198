"""Ending the job workers a test started, so none outlives its test (shared by the job tests)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from lsn_explorer.jobs import control
from lsn_explorer.session.store import Session


def kill_active_jobs(sessions: Path, name: str) -> None:
    """SIGKILL the worker of every queued or running job of session `name` (if it exists): also
    workers started by a `jobs resume` subprocess, which this process never saw."""
    if not (sessions / name / "session.sqlite").is_file():
        return
    with Session.open(name, sessions, create=False) as session:
        for job in control.list_jobs(session):
            if job.state in control.ACTIVE and job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def reap_workers(timeout: float = 60) -> list[int]:
    """Wait for every worker this process started; kill those still running after `timeout`
    seconds and return their pids."""
    stuck = []
    for child in list(control._children):
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            stuck.append(child.pid)
    return stuck
