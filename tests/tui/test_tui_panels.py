"""Score, history re-run, neuron inspection and bad input in the app (demo model, Pilot)."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable, Static
from tui_helpers import SIZE, notifications, settle, type_into

from lsn_explorer.tui.app import create_app
from lsn_explorer.tui.panels.interventions import InterventionRow
from lsn_explorer.workbench.state import SwitchRow


async def test_score_xnli_sample_then_rerun_from_history(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.workbench.set_rows([SwitchRow("0.1,1.2,2.3,3.4,4.5,5.6=x3", True)])
        await pilot.press("f6")
        await type_into(pilot, "#sample", "1")
        await pilot.press("enter")
        await pilot.pause()
        shown = str(app.query_one("#sample-text", Static).content)
        assert "premise:" in shown and "gold:" in shown
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        table = app.query_one("#score-table", DataTable)
        assert table.row_count == 2
        probabilities = [float(table.get_cell_at((0, col))) for col in (3, 4, 5)]
        assert sum(probabilities) == pytest.approx(1.0, abs=2e-3)
        scores = app.workbench.session.records("score")
        assert len(scores) == 1 and scores[0].payload["sample"] == 1
        assert scores[0].payload["rows"][1]["label"] != "baseline"
        # History lists the score; R re-runs it (a new record, scored again).
        await pilot.press("f7")
        history = app.query_one("#history-table", DataTable)
        assert history.row_count == 1
        await pilot.press("r")
        await settle(app, pilot)
        assert len(app.workbench.session.records("score")) == 2
        assert history.row_count == 2


async def test_generation_rerun_uses_current_interventions(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f5")
        await type_into(pilot, "#prompt", "The weather")
        await type_into(pilot, "#max-new-tokens", "6")
        await pilot.press("enter")
        await settle(app, pilot)
        first = app.workbench.session.records("generation")[-1].payload
        assert len(first["rows"]) == 1  # nothing switched on: baseline only
        assert "none switched on" in str(app.query_one("#pane-intervened .pane-title").content)
        app.workbench.set_rows([SwitchRow("0.1,1.2,2.3=zero", True)])
        await pilot.press("f7")
        await pilot.press("r")
        await settle(app, pilot)
        again = app.workbench.session.records("generation")[-1].payload
        assert again["prompt"] == "The weather" and again["max_new_tokens"] == 6
        assert len(again["rows"]) == 2 and again["rows"][1]["specs"] == ["0.1,1.2,2.3=zero"]


async def test_inspect_a_neuron(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.workbench.compute_stats(["en", "zh"], max_tokens=600)
        await pilot.press("f3")
        await type_into(pilot, "#inspect", "2.40")
        await pilot.press("enter")
        await pilot.pause()
        table = app.query_one("#inspect-table", DataTable)
        assert table.row_count == 2
        expected = app.workbench.neuron_profile("2.40").rows["zh"][0]
        assert float(table.get_cell_at((1, 1))) == pytest.approx(expected, abs=5e-4)
        await type_into(pilot, "#inspect", "2.99999")
        await pilot.press("enter")
        await pilot.pause()
        assert any("out of range" in m for m in notifications(app))


async def test_malformed_spec_and_long_prompt_are_notifications(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f4")
        await type_into(pilot, "#iv-spec", "lape:zh=p42")
        await pilot.press("enter")
        await pilot.pause()
        assert not list(app.query(InterventionRow))
        assert any("bad intervention" in m and "SOURCE[:LANG]" in m for m in notifications(app))
        await pilot.press("f5")
        app.query_one("#prompt").value = "word " * 400
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert any("context" in m for m in notifications(app))
        # Still usable: a normal prompt generates afterwards.
        await type_into(pilot, "#prompt", "Hello")
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert len(app.workbench.session.records("generation")) == 1


async def test_bad_model_path_is_a_notification_and_the_app_stays_usable(tmp_path):
    app = create_app(session="bad", root=tmp_path, model=str(tmp_path / "no-such-model"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert any("no-such-model" in m for m in notifications(app))
        assert app.lane is None and "no model" in str(app.query_one("#status", Static).content)
        await pilot.press("f5")
        await type_into(pilot, "#prompt", "Hello")
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert any("no model is loaded" in m for m in notifications(app))
        await pilot.press("f2")
        assert app.query_one("#languages-list").option_count > 10


async def test_escape_cancels_statistics_and_stores_nothing(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await pilot.click("#stats-compute")  # the whole corpus of en and zh: long enough to cancel
        await pilot.pause(0.3)
        assert app.lane is not None
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.lane is None
        assert any("cancelled" in m for m in notifications(app))
        assert len(app.workbench.session.records("stats")) <= 1  # a finished language may stay


async def test_command_palette_runs_actions(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Score sample")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(app, pilot)
        assert len(app.workbench.session.records("score")) == 1
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Compute statistics", "Identify neurons", "Add intervention row", "Generate",
                      "Score sample", "Re-run history entry", "Cancel", "Open session", "Open model", "Help"):
            assert title in titles


async def test_session_picker_starts_a_new_session(demo, tmp_path):
    from lsn_explorer.session.store import Session

    Session.open("older", tmp_path).close()
    app = create_app(root=tmp_path, handle=demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.workbench is None
        await pilot.click("#session-new")
        await pilot.press(*"fresh", "enter")
        await settle(app, pilot)
        assert app.workbench is not None and app.workbench.session.name == "fresh"
        assert "session fresh" in str(app.query_one("#status", Static).content)


async def test_escape_cancels_a_generation_and_keeps_what_streamed(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.workbench.set_rows([SwitchRow("0.1,1.2=zero", True)])
        await pilot.press("f5")
        await type_into(pilot, "#max-new-tokens", "110")
        await type_into(pilot, "#prompt", "The")
        # Started as Ctrl+G would; Pilot's press() waits for the screen to go idle, which a
        # streaming generation never is, so the key would only land after the last token.
        await app.action_generate()
        pane = app.query_one("#pane-baseline")
        for _ in range(200):
            if pane.text:
                break
            await asyncio.sleep(0.02)
        await pilot.press("escape")
        await settle(app, pilot)
        record = app.workbench.session.records("generation")[-1].payload
        assert record["cancelled"] is True
        assert all(len(row["token_ids"]) < 110 for row in record["rows"])
        assert "cancelled" in str(app.query_one("#pane-baseline .pane-footer", Static).content)


async def test_score_a_real_benchmark_sample(make_app, shared_data):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f6")
        await type_into(pilot, "#data-dir", str(shared_data))
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert app.query_one("#score-table", DataTable).row_count == 1
        assert app.workbench.session.records("score")[-1].payload["example_id"]
