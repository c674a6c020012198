"""The Jobs tab and the Results view at 120×40 (SVG snapshots). Their content is written straight
into a session's store (a finished evaluation job with its samples, an interrupted job, a failed
statistics job), never a live run, so the pictures are the same on every machine."""

from __future__ import annotations

import pytest
from jobs_helpers import fake_jobs_session
from tui_helpers import SIZE, settle

from lsn_explorer.tui.app import create_app


@pytest.fixture
def jobs_app(demo, tmp_path):
    fake_jobs_session(tmp_path, "jobs").close()
    return create_app(session="jobs", root=tmp_path, handle=demo)


def _before(*keys: str):
    async def run(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)
        app.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    return run


def test_jobs_tab(snap_compare, jobs_app):
    # The cursor on the interrupted job: its detail says R resumes it.
    assert snap_compare(jobs_app, terminal_size=SIZE, run_before=_before("f8", "down"))


def test_results_view(snap_compare, jobs_app):
    # The finished evaluation's table: Δ coloured by its CI (the heat map).
    assert snap_compare(jobs_app, terminal_size=SIZE, run_before=_before("f9", "down", "enter"))
