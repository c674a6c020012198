"""Quitting: at once after launch, and while a model task runs that cannot stop when asked."""

from __future__ import annotations

import threading

from tui_helpers import SIZE

from lsn_explorer.tui.app import create_app
from lsn_explorer.tui.lane import wait_for_lane


async def test_quitting_at_once_after_launch_exits_cleanly(make_app):
    # Ctrl+Q within the first half second arrived while the later tabs were still mounting:
    # Textual tore them down half-built and printed a traceback on exit (MountError from Lazy,
    # NoMatches from a Select's on_mount).
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await pilot.pause(0.5)
    assert app.return_code == 0  # and run_test raised nothing


def test_quitting_leaves_a_model_task_that_cannot_stop_behind(tmp_path):
    # A model load has no cancel point. App.run used to return only when it finished (asyncio.run
    # joined the thread worker's executor), so Ctrl+Q during an 8B load left the shell waiting.
    release = threading.Event()
    started = threading.Event()
    cancel_seen: list[bool] = []

    def stuck(cancel: threading.Event) -> None:
        started.set()
        release.wait(30)
        cancel_seen.append(cancel.is_set())

    app = create_app(session="q", root=tmp_path, autoload=False)

    async def drive(pilot) -> None:
        await pilot.pause(0.2)
        assert app.run_model_task("loading model", stuck)
        for _ in range(100):
            if started.is_set():
                break
            await pilot.pause(0.05)
        assert started.is_set()
        await pilot.press("ctrl+q")

    app.run(headless=True, size=SIZE, auto_pilot=drive)
    left_behind = not wait_for_lane(0.1)
    release.set()
    assert left_behind  # run() returned while the task still ran
    assert wait_for_lane(5)  # and the thread ends by itself once its work does
    assert cancel_seen == [True]  # the quit asked it to stop, for tasks that look
