"""Jobs and Results tabs and the Evaluate form, through Pilot: real evaluation jobs on the demo
model (a few XNLI samples, run by a detached worker process) and a session with jobs written
straight into its store."""

from __future__ import annotations

import pytest
from jobs_helpers import fake_jobs_session, type_in_form, until, wait_job
from textual.widgets import DataTable, Select
from tui_helpers import SIZE, notifications, settle

from lsn_explorer.tui.screens.evaluate import EvaluateScreen
from lsn_explorer.tui.screens.job_log import JobLogScreen


async def fill_form(app, pilot, *, limit: str = "4", grid_set: str = "lape", values: str = "zero,p90",
                    langs: str | None = None, random_k: str | None = None) -> EvaluateScreen:
    await pilot.press("ctrl+e")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, EvaluateScreen)
    await type_in_form(pilot, "#eval-limit", limit)
    screen.query_one("#eval-set", Select).value = grid_set or ""
    await type_in_form(pilot, "#eval-values", values)
    if langs is not None:
        await type_in_form(pilot, "#eval-langs", langs)
    if random_k is not None:
        await type_in_form(pilot, "#eval-random", random_k)
    return screen


async def test_evaluate_runs_in_the_background_notifies_on_another_tab_and_shows_the_table(make_app, lape_session):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await fill_form(app, pilot)
        await pilot.press("enter")  # Enter in a field launches
        await settle(app, pilot)
        assert not isinstance(app.screen, EvaluateScreen)
        assert app.query_one("TabbedContent").active == "jobs"
        (job,) = app.workbench.job_rows()
        assert job.name == "eval xnli-1" and job.state in ("queued", "running") and job.can_cancel
        evaluation = app.workbench.session.eval_named("xnli-1")
        spec = evaluation.spec
        assert spec["langs"] == ["en", "zh"] and spec["limit"] == 4
        # none, the switched-on row, and one row per grid value
        assert [r["key"] for r in spec["rows"]] == ["none", "lape=zero", "lape=p90", "lape:zh=zero"]
        assert app.query_one("#jobs-table", DataTable).row_count == 1

        await pilot.press("f2")  # somewhere else when it finishes
        assert await wait_job(lape_session, job.id) == "finished"
        await until(pilot, lambda: any("job 1 finished" in m for m in notifications(app)))
        assert app.query_one("TabbedContent").active == "languages"
        await settle(app, pilot)
        await pilot.press("f9")
        await settle(app, pilot)
        table = app.query_one("#result-table", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["lang", "none", "zero", "p90", "lape:zh=zero"]
        assert table.row_count == 2
        en = [str(cell) for cell in table.get_row_at(0)]
        assert en[0] == "en" and "±" in en[1] and "Δ" in en[2]
        assert "finished · 32 scored samples" in str(app.query_one("#result-status").content)


@pytest.mark.parametrize("fields, fragment", [
    ({"limit": "four"}, "the sample limit must be a whole number"),
    ({"values": "zero,p42"}, "p42 is not a grid value"),
    ({"grid_set": "", "random_k": "2"}, "random baselines are matched to a grid"),
    ({"langs": "en,fr"}, "fr"),  # the demo has no French XNLI file: found before anything starts
    ({"langs": "en,xx"}, "xx"),
])
async def test_bad_input_in_the_form_is_a_notification_and_launches_nothing(make_app, lape_session, fields, fragment):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await fill_form(app, pilot, **fields)
        await pilot.click("#eval-launch")
        await settle(app, pilot)
        assert isinstance(app.screen, EvaluateScreen), "the form stays open to fix the input"
        errors = [m for m in notifications(app) if fragment in m]
        assert errors, notifications(app)
        assert not app.screen.query_one("#eval-launch").disabled
        assert app.workbench.session.jobs() == [] and app.workbench.session.evals() == []


async def test_cancel_and_resume_keys_stop_and_continue_a_job(make_app, lape_session):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await fill_form(app, pilot, limit="2", values="zero")
        await pilot.click("#eval-launch")
        await settle(app, pilot)
        await pilot.press("c")
        assert any("job 1: asked to stop" in m for m in notifications(app))
        assert await wait_job(lape_session, 1) == "cancelled"
        await until(pilot, lambda: any("job 1 cancelled" in m for m in notifications(app)))
        assert app.workbench.job_rows()[0].can_resume
        await pilot.press("c")
        assert any("job 1 is cancelled: there is nothing to cancel" in m for m in notifications(app))
        await pilot.press("r")
        assert any("job 1 resumed" in m for m in notifications(app))
        assert await wait_job(lape_session, 1) == "finished"
        await until(pilot, lambda: any("job 1 finished" in m for m in notifications(app)))
        (row,) = app.workbench.job_rows()
        assert row.fraction == 1.0 and not row.can_resume
        # 2 samples × 3 rows × 2 languages, each scored once across the two runs
        assert len(app.workbench.session.samples(app.workbench.session.eval_named("xnli-1").id)) == 12


async def test_reopening_lists_jobs_with_their_real_state_and_opens_log_and_results(make_app, tmp_path):
    fake_jobs_session(tmp_path, "flow").close()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert not notifications(app), "jobs that ended while the app was closed are listed, not announced"
        await pilot.press("f8")
        await settle(app, pilot)
        jobs = app.query_one("#jobs-table", DataTable)
        states = {jobs.get_row_at(i)[0]: str(jobs.get_row_at(i)[2]) for i in range(jobs.row_count)}
        assert states == {"1": "finished", "2": "interrupted", "3": "failed"}
        assert "job 3 · stats en,de · failed" in str(app.query_one("#job-detail").content)
        await pilot.press("c")
        assert any("job 3 is failed: there is nothing to cancel" in m for m in notifications(app))
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, JobLogScreen)
        await pilot.press("escape")
        await pilot.press("down", "down", "enter")  # job 1 → its evaluation's table
        await settle(app, pilot)
        assert app.query_one("TabbedContent").active == "results"
        assert "xnli-1 · xnli · accuracy (%); set: lape" in str(app.query_one("#result-title").content)
        table = app.query_one("#result-table", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["lang", "none", "zero", "p90", "random (zero)"]
        zero_en = table.get_row_at(0)[2]
        assert str(zero_en).split() == ["15.0", "±", "15.0", "Δ-60.0*"]
        assert "#b2182b" in str(zero_en.style)  # the strongest significant drop: dark red
