"""The Neurons tab on the demo model: a run shows its set, Esc really cancels, and a set that a
switched-on row uses is never replaced without asking (Pilot)."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import OptionList, Select, Static
from tui_helpers import SIZE, notifications, settle, type_into

from lsn_explorer.core.neurons.methods import METHODS, TITLES
from lsn_explorer.workbench.state import SwitchRow
from lsn_explorer.workbench.views import format_params


def _set_records(app) -> list[tuple[int, str]]:
    return [(r.id, r.name) for r in app.workbench.session.records("neuron_set")]


async def test_a_run_shows_its_new_set_without_an_error(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.workbench.compute_stats(["en", "zh"], max_tokens=600)
        await pilot.press("f3")
        app.run_model_task("another tab's task", lambda cancel: None)  # not this panel's to report
        await settle(app, pilot)
        assert str(app.query_one("#method-progress", Static).content) == ""
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert app.query_one("#set-choice", Select).value == "lape"
        assert str(app.query_one("#method-progress", Static).content).startswith("stored lape: en ")
        # A second set under another name is the one shown next, not the first one again.
        await type_into(pilot, "#method-name", "lape-wide")
        await type_into(pilot, "#method-params", "top_rate=0.05")
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert app.query_one("#set-choice", Select).value == "lape-wide"
        assert "lape-wide (LAPE; top_rate=0.05" in str(app.query_one("#layer-chart", Static).content.title)
        shown = notifications(app)
        assert not [m for m in shown if "failed" in m or "Illegal" in m], shown
        assert sum("neurons" in m or "lape-wide:" in m for m in shown) >= 1


async def test_methods_and_their_defaults_come_from_the_registry(make_app, monkeypatch):
    # A title changed in the registry shows in the app: the panel keeps no table of its own.
    monkeypatch.setitem(TITLES, "actprob90p", "Act Prob 90p (Mondal et al.)")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        method = app.query_one("#method", Select)
        listed = method.query_one(OptionList)
        assert [str(listed.get_option_at_index(i).prompt) for i in range(listed.option_count)] == \
            [TITLES[m] for m in METHODS]
        for name in METHODS:  # each title's value is the method's name (an unknown value raises)
            method.value = name
        method.value = "type1"
        await pilot.pause()
        assert app.query_one("#method-params").value == format_params("type1") == "top_n=1000 layers=auto"


async def test_escape_cancels_type1_and_stores_nothing(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # The set a cancelled run must leave alone (made quickly with LAPE under the name type1).
        app.workbench.compute_stats(["en", "zh"], max_tokens=600)
        app.workbench.identify("lape", {"top_rate": 0.05}, name="type1")
        before = _set_records(app)
        await pilot.press("f3")
        app.query_one("#method", Select).value = "type1"
        await pilot.pause()
        # Started as Ctrl+T would; the progress updates keep the screen busy, so a pressed key
        # could wait for the whole run (see the generation test).
        await app.action_identify()
        assert app.lane is not None
        progress = app.query_one("#method-progress", Static)
        for _ in range(400):  # the first model pass reports within a few seconds
            if "sentences" in str(progress.content):
                break
            await asyncio.sleep(0.02)
        assert "zh" in str(progress.content) and "sentences" in str(progress.content)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.lane is None
        assert any("cancelled" in m for m in notifications(app))
        assert _set_records(app) == before
        assert app.workbench.neuron_summary("type1").method == "lape"
        assert "cancelled" in str(progress.content)


@pytest.fixture
def in_use_app(make_app):
    """An app whose session has a LAPE set `lape` that a switched-on row uses."""

    async def start(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        app.workbench.compute_stats(["en", "zh"], max_tokens=600)
        app.workbench.identify("lape", {"top_rate": 0.05})
        app.workbench.set_rows([SwitchRow("lape:zh=zero", True)])
        await pilot.press("f3")
        await type_into(pilot, "#method-params", "top_rate=0.02")
        await pilot.press("ctrl+t")
        await pilot.pause()

    return make_app(), start


async def test_a_set_in_use_is_saved_under_a_free_name_by_default(in_use_app):
    from lsn_explorer.tui.screens.replace_set import ReplaceSetScreen

    app, start = in_use_app
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        first = app.workbench.session.latest("neuron_set", "lape").id
        assert isinstance(app.screen, ReplaceSetScreen)
        assert app.lane is None  # nothing runs while the question is open
        assert "Save as lape-2" in str(app.screen.query_one("#replace-save-as").label)
        await pilot.press("enter")  # the default answer
        await settle(app, pilot)
        assert app.workbench.session.latest("neuron_set", "lape").id == first
        assert app.workbench.neuron_summary("lape-2").params["top_rate"] == pytest.approx(0.02)
        assert app.query_one("#set-choice", Select).value == "lape-2"
        assert [r.spec for r in app.workbench.state.rows if r.enabled] == ["lape:zh=zero"]


async def test_a_set_in_use_is_replaced_when_the_user_says_so(in_use_app):
    app, start = in_use_app
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        first = app.workbench.session.latest("neuron_set", "lape").id
        await pilot.click("#replace-replace")
        await settle(app, pilot)
        assert app.workbench.session.latest("neuron_set", "lape").id != first
        assert app.workbench.neuron_summary("lape").params["top_rate"] == pytest.approx(0.02)
        assert app.workbench.neuron_set_names() == ["lape"]


async def test_a_set_in_use_question_can_be_cancelled(in_use_app):
    app, start = in_use_app
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        before = _set_records(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.lane is None and _set_records(app) == before
        assert any("not run" in m for m in notifications(app))
