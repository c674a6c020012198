"""Every screen at 120×40, as a person sees it (SVG snapshots; `pytest --snapshot-update` rewrites
them after an intended change — look at the diff before committing)."""

from __future__ import annotations

import pytest
from tui_helpers import SIZE, settle

from lsn_explorer.tui.app import create_app
from lsn_explorer.workbench.state import SwitchRow


@pytest.fixture
def snap_app(demo, tmp_path):
    """The app on the demo model with a session holding en/zh statistics (600 tokens each), a
    LAPE set (top_rate 0.05) and one switched-on row: the state every screen is shown in."""
    from lsn_explorer.workbench.bench import Workbench

    workbench = Workbench.open("snap", tmp_path)
    workbench.handle = demo
    workbench.compute_stats(["en", "zh"], max_tokens=600)
    workbench.identify("lape", {"top_rate": 0.05})
    workbench.set_rows([SwitchRow("lape:zh=zero", True), SwitchRow("lape:en=p90@prompt", False)])
    workbench.close()
    return create_app(session="snap", root=tmp_path, handle=demo)


def _before(*keys: str, prompt: str | None = None, then: tuple[str, ...] = ()):
    async def run(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        await pilot.press(*keys)
        if prompt is not None:
            app.query_one("#prompt").value = prompt
        await pilot.press(*then)
        await settle(app, pilot)
        app.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    return run


@pytest.mark.parametrize("name, keys, then", [
    ("languages", ("f2",), ()),
    ("neurons", ("f3",), ()),
    ("interventions", ("f4",), ()),
    ("score", ("f6",), ("ctrl+r",)),
    ("help", ("f1",), ()),
])
def test_screen(snap_compare, snap_app, name, keys, then):
    assert snap_compare(snap_app, terminal_size=SIZE, run_before=_before(*keys, then=then))


def test_generate_screen(snap_compare, snap_app):
    assert snap_compare(snap_app, terminal_size=SIZE, run_before=_before("f5", prompt="我们今天", then=("ctrl+g",)))


def test_history_screen(snap_compare, snap_app):
    async def run(pilot) -> None:
        await _before("f5", prompt="我们今天", then=("ctrl+g",))(pilot)
        await pilot.press("f7")
        await pilot.pause()
        pilot.app.set_focus(None)
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=SIZE, run_before=run)


def test_session_picker(snap_compare, demo, tmp_path):
    from lsn_explorer.session.store import Session

    for name in ("zh-lape", "ja-transfer"):
        Session.open(name, tmp_path).close()
    app = create_app(root=tmp_path, handle=demo)
    assert snap_compare(app, terminal_size=SIZE)


def test_open_model_screen(snap_compare, snap_app):
    async def run(pilot) -> None:
        await settle(pilot.app, pilot)
        pilot.app.action_open_model()
        await pilot.pause()
        pilot.app.set_focus(None)
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=SIZE, run_before=run)
