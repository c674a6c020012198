"""A background evaluation outlives the app that launched it, in a real terminal: `lsn-explorer tui`
in tmux launches it (Ctrl+E), quits (Ctrl+Q), and a reopened app shows its progress and its table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import tmux_driver as tmux

from lsn_explorer.jobs import control
from lsn_explorer.jobs.locks import is_held, lock_path
from lsn_explorer.session.store import Session
from lsn_explorer.workbench.state import SwitchRow

pytestmark = pytest.mark.skipif(not tmux.available(), reason="tmux is not installed")


def quit_app(name: str) -> None:
    tmux.keys(name, "C-q")
    for _ in range(100):
        if not tmux.alive(name):
            return
        time.sleep(0.1)
    raise AssertionError("the app did not quit on Ctrl+Q")


def job_line(screen: str) -> str:
    return next((line for line in screen.splitlines() if "eval xnli-1" in line), "")


def test_a_job_keeps_running_after_the_app_quits_and_the_reopened_app_shows_it(demo, tmp_path):
    from lsn_explorer.workbench.bench import Workbench

    workbench = Workbench.open("flow", tmp_path)
    workbench.handle = demo
    workbench.compute_stats(["en", "zh"], max_tokens=600)
    workbench.identify("lape", {"top_rate": 0.05})
    workbench.set_rows([SwitchRow("lape:zh=zero", True)])
    workbench.close()
    exe = Path(sys.executable).with_name("lsn-explorer")
    command = f"{exe} tui --session flow --sessions-dir {tmp_path}"
    name = f"lsn-jobs-{tmp_path.name}"
    tmux.start(name, command)
    try:
        tmux.wait_for(name, "demo-model (Llama", 120)
        tmux.keys(name, "C-e")
        tmux.wait_for(name, "Evaluate in the background")
        tmux.keys(name, "4", literal=True)  # the form opens in its limit field
        tmux.keys(name, "Enter")
        launched = tmux.wait_for(name, "job 1 started", 30)
        assert "Background jobs of this session" in launched and "eval xnli-1" in launched
        quit_app(name)

        with Session.open("flow", tmp_path, create=False) as session:
            job = control.status(session, 1)
            assert job.state in control.ACTIVE, "the worker ended with the app"
            assert is_held(lock_path(session.folder, 1)), "no live worker holds the job's lock"

        tmux.start(name, command)  # reopened while the job runs
        tmux.wait_for(name, "session flow", 30)
        tmux.keys(name, "F8")
        shown = tmux.wait_for(name, "eval xnli-1", 30)
        assert any(state in job_line(shown) for state in ("queued", "running", "finished")), shown
        done = tmux.wait_for(name, "job 1 finished", 120)  # the reopened app saw it end
        assert "finished" in job_line(done) and "100%" in job_line(done)
        tmux.keys(name, "F9")
        table = tmux.wait_for(name, "scored samples", 30)
        # rows: none and the switched-on row; 4 samples × 2 rows × 2 languages
        assert "xnli-1 · xnli · accuracy (%)" in table and "lape:zh=zero" in table
        assert "finished · 16 scored samples" in table and "Δ" in table
        quit_app(name)
    finally:
        tmux.kill(name)
        with Session.open("flow", tmp_path, create=False) as session:
            if session.job(1) is not None:
                control.wait(session, 1, timeout=120)  # leave no worker behind
