"""What the app tells the user when something cannot be done: the app's own actions instead of
CLI flags, sessions that cannot be opened, and intervention rows refused as they are typed (Pilot)."""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import Input, OptionList, ProgressBar, Static
from tui_helpers import SIZE, notifications, settle, type_into

from lsn_explorer.errors import LsnError
from lsn_explorer.session.store import DB_NAME, SCHEMA_VERSION, Session
from lsn_explorer.tui.app import create_app
from lsn_explorer.tui.hints import app_hint
from lsn_explorer.tui.panels.interventions import InterventionRow
from lsn_explorer.tui.screens.sessions import SessionScreen
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.state import SwitchRow

CLI_WORDS = ("lsn-explorer ", "--")


def _errors(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


# -- hints ---------------------------------------------------------------------------------------
async def test_lape_over_one_language_says_to_tick_languages_not_pass_langs(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.workbench.compute_stats(["zh"], max_tokens=600)
        app.workbench.set_languages(["zh"])
        await pilot.press("f3", "ctrl+t")
        await settle(app, pilot)
        [shown] = _errors(app)
        assert "LAPE compares languages" in shown
        assert "tick the languages in the Languages tab (F2)" in shown
        assert not any(words in shown for words in CLI_WORDS), shown


async def test_statistics_for_a_language_without_text_say_what_to_tick_and_stop_the_bar(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        app.run_model_task("another tab's task", lambda cancel: None)  # not this panel's to report
        await settle(app, pilot)
        assert str(app.query_one("#stats-progress", Static).content) == ""
        app.query_one("#languages-list").select("de")  # the demo corpus has no German text
        await pilot.pause()
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        [shown] = _errors(app)
        assert "no corpus text for de" in shown
        assert "languages with text there: bn, en" in shown  # the core's own detail stays
        assert "or tick a language marked ✓ in the Languages tab (F2)" in shown
        assert not any(words in shown for words in CLI_WORDS), shown
        # The bar does not keep spinning after the failure, and the line under it says why.
        bar = app.query_one("#stats-bar", ProgressBar)
        assert bar.total is not None and bar.progress == 0
        assert "stopped by an error" in str(app.query_one("#stats-progress", Static).content)
        assert app.workbench.session.records("stats") == []


async def test_generation_settings_errors_name_the_fields_not_the_flags(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f5")
        await type_into(pilot, "#max-new-tokens", "0")
        await type_into(pilot, "#prompt", "Hello")
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        app.query_one("#max-new-tokens", Input).value = "8"
        app.query_one("#prompt", Input).value = "word " * 400
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        zero, too_long = _errors(app)
        assert "new tokens must be at least 1" in zero
        assert "context" in too_long and "lower the new tokens in the Generate tab (F5)" in too_long
        assert not any(words in m for m in (zero, too_long) for words in CLI_WORDS), (zero, too_long)
        assert app.workbench.session.records("generation") == []


def _core_errors(tmp_path) -> dict[str, LsnError]:
    """Errors the core raises today with CLI hints, each caught from the real call."""
    from lsn_explorer.core.data.corpora import corpus_file
    from lsn_explorer.core.neurons.runs import load_neuron_set
    from lsn_explorer.core.stats.runs import load_stats
    from lsn_explorer.core.tasks.files import task_file
    from lsn_explorer.core.tasks.registry import pick

    session = Session.open("hints", tmp_path)
    calls = {
        "no set": lambda: load_neuron_set(session, "lape"),
        "no stats": lambda: load_stats(session, "zh"),
        "no corpus": lambda: corpus_file("de"),
        "no sample": lambda: pick(["only one"], 5, "xnli", "en"),
        "no task file": lambda: task_file("xnli", "de", str(tmp_path)),
    }
    caught = {}
    for what, call in calls.items():
        with pytest.raises(LsnError) as info:
            call()
        caught[what] = info.value
    session.close()
    return caught


@pytest.mark.parametrize("what, action", [
    ("no set", "run a method in the Neurons tab (F3, Ctrl+T)"),
    ("no stats", "compute statistics in the Languages tab (F2, Ctrl+T)"),
    ("no corpus", "tick a language marked ✓"),
    ("no sample", "choose another sample number in the Score tab (F6)"),
    ("no task file", "set the data folder in the Score tab (F6)"),
])
def test_core_hints_naming_the_cli_become_the_apps_actions(tmp_path, what, action):
    exc = _core_errors(tmp_path)[what]
    assert any(words in exc.hint for words in CLI_WORDS), f"the core no longer names the CLI here: {exc.hint}"
    shown = app_hint(exc.hint)
    assert action in shown
    assert not any(words in shown for words in CLI_WORDS), shown


def test_hints_without_the_cli_are_kept_as_they_are():
    hint = "restore it from a copy, or start a new session"
    assert app_hint(hint) == hint


# -- the session picker --------------------------------------------------------------------------
async def test_sessions_that_cannot_be_opened_are_listed_and_explained(demo, tmp_path):
    Session.open("good", tmp_path).close()
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / DB_NAME).write_bytes(b"this is not an sqlite database\n" * 64)
    (tmp_path / "newer").mkdir()
    with sqlite3.connect(tmp_path / "newer" / DB_NAME) as db:
        db.execute("CREATE TABLE records (id INTEGER PRIMARY KEY)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    app = create_app(root=tmp_path, handle=demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        listed = app.screen.query_one("#session-list", OptionList)
        prompts = {listed.get_option_at_index(i).id: str(listed.get_option_at_index(i).prompt)
                   for i in range(listed.option_count)}
        assert prompts["garbage"].startswith("⚠ garbage — session.sqlite is not a readable session database")
        assert prompts["newer"].startswith("⚠ newer — ") and f"schema {SCHEMA_VERSION + 1}" in prompts["newer"]
        assert not prompts["good"].startswith("⚠")
        for name, reason, hint in (("garbage", "not a readable session database", "restore it from a copy"),
                                   ("newer", "written by a newer lsn-explorer", "upgrade lsn-explorer")):
            listed.highlighted = listed.get_option_index(name)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, SessionScreen) and app.workbench is None
            assert any(reason in m and hint in m for m in _errors(app)), _errors(app)
        listed.highlighted = listed.get_option_index("good")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.workbench is not None and app.workbench.session.name == "good"


# -- intervention rows ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec, expected", [
    ("nosuchset:zh=zero", "has no neuron set 'nosuchset'"),  # an unknown set
    ("9.9999=zero", "neuron 9.9999 is not in this model"),  # a layer the demo model lacks
    ("5.99999=zero", "neuron 5.99999 is not in this model"),  # an index beyond d_ff
    ("3.17:zh=p90", "needs zh's activation statistics"),  # a percentile before statistics exist
])
async def test_a_bad_typed_row_is_refused_and_its_text_kept(make_app, spec, expected):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f4")
        await type_into(pilot, "#iv-spec", spec)
        await pilot.press("enter")
        await pilot.pause()
        assert not list(app.query(InterventionRow))
        assert app.workbench.state.rows == []
        assert any(expected in m for m in _errors(app)), _errors(app)
        assert app.query_one("#iv-spec", Input).value == spec  # nothing lost: fix it and press Enter


async def test_a_good_typed_row_is_added_and_the_input_cleared(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f4")
        await type_into(pilot, "#iv-spec", "5.767,0.0=x0")
        await pilot.press("enter")
        await pilot.pause()
        assert [r.row.spec for r in app.query(InterventionRow)] == ["5.767,0.0=x0"]
        assert app.query_one("#iv-spec", Input).value == ""
        assert not _errors(app)


@pytest.mark.parametrize("spec, expected", [
    ("5.99999=zero", "is not in this model"),  # a typed neuron index beyond d_ff
    ("3.17:zh=p90", "needs zh's activation statistics"),  # a percentile before statistics exist
])
async def test_a_stored_bad_row_is_switched_off_when_switched_on(make_app, tmp_path, spec, expected):
    # Rows restored from the session (saved by an older version, or for another model) are not
    # re-checked until they are switched on.
    workbench = Workbench.open("flow", tmp_path)
    workbench.set_rows([SwitchRow(spec, False)])
    workbench.close()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f4")
        await pilot.pause()
        row = app.query_one(InterventionRow)
        row.query_one(".iv-on").toggle()
        await pilot.pause()
        assert not row.enabled
        assert any(expected in m and "row switched off" in m for m in notifications(app))
        assert app.workbench.active() == []
