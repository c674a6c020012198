"""The Fine-tune form, a fine-tune's loss curve in the Jobs tab and the adapter pickers, through
Pilot: a real 3-step fine-tune of the demo model's LAPE zh neurons run by a detached worker, and a
snapshot of the loss curve from a finished job written straight into a session's store."""

from __future__ import annotations

import pytest
from jobs_helpers import fake_finetune_session, type_in_form, until, wait_job
from textual.widgets import Select
from tui_helpers import SIZE, notifications, settle

from lsn_explorer.tui.app import create_app
from lsn_explorer.tui.screens.evaluate import EvaluateScreen
from lsn_explorer.tui.screens.finetune import FinetuneScreen
from lsn_explorer.tui.widgets.adapter_picker import AdapterPicker


async def open_form(app, pilot, **fields: str) -> FinetuneScreen:
    """Ctrl+F, then type into the named fields (`steps="3"` → #ft-steps) and choose Selects."""
    await pilot.press("ctrl+f")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, FinetuneScreen)
    for field, value in fields.items():
        selector = f"#ft-{field}"
        if isinstance(screen.query_one(selector), Select):
            screen.query_one(selector, Select).value = value
        else:
            await type_in_form(pilot, selector, value)
    return screen


async def test_the_form_trains_an_adapter_with_a_loss_curve_that_generate_score_and_evaluate_then_use(
        make_app, lape_session, demo):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_form(app, pilot, steps="3", batch="2", name="zh-ft")
        # The form's defaults: the newest set, its target setup, the language under study that is not English.
        assert screen.request().neurons() == "lape:zh"
        await pilot.click("#ft-launch")
        await settle(app, pilot)
        assert not isinstance(app.screen, FinetuneScreen)
        assert app.query_one("TabbedContent").active == "jobs"
        (job,) = app.workbench.job_rows()
        assert job.kind == "finetune" and job.state in ("queued", "running")
        stored = app.workbench.session.job(job.id).spec["finetune"]
        assert stored["neurons"].startswith("#") and stored["neurons"].endswith(":zh")  # pinned to the set's record
        assert (stored["max_steps"], stored["batch"], stored["name"]) == (3, 2, "zh-ft")

        assert await wait_job(lape_session, job.id) == "finished"
        await until(pilot, lambda: any("job 1 finished" in m for m in notifications(app)))
        curve = app.query_one("#loss-curve")
        assert curve.display
        shown = str(curve.content)
        assert "training loss" in shown and "at step 3" in shown and "step 1" in shown
        assert any(block in shown for block in "▁▂▃▄▅▆▇█")

        # The adapter is offered in Generate's picker; choosing it reloads the model with it.
        await pilot.press("f5")
        await settle(app, pilot)
        picker = app.query_one("#generate-adapter", AdapterPicker)
        assert [value for _, value in picker._options] == ["", "zh-ft"]
        picker.value = "zh-ft"
        await settle(app, pilot)
        handle = app.workbench.handle
        assert handle is not demo and handle.adapter == "zh-ft" and demo.adapter is None
        assert app.workbench.state.adapter == "zh-ft"
        assert "+ adapter zh-ft" in str(app.query_one("#status").content)

        # Score follows the same choice, and its record says which weights scored it.
        await pilot.press("f6")
        await settle(app, pilot)
        assert app.query_one("#score-adapter", AdapterPicker).value == "zh-ft"
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        (score,) = app.workbench.session.records("score")
        assert score.provenance["model"].get("adapter") == "zh-ft"

        # The Evaluate form starts on the chosen adapter and passes it into the evaluation.
        await pilot.press("ctrl+e")
        await pilot.pause()
        assert isinstance(app.screen, EvaluateScreen)
        assert app.screen.query_one("#eval-adapter", Select).value == "zh-ft"
        assert app.screen.request().adapter == "zh-ft"
        await pilot.press("escape")

        # Back to the base model: a fresh load without the adapter.
        await pilot.press("f5")
        await settle(app, pilot)
        app.query_one("#generate-adapter", AdapterPicker).value = ""
        await settle(app, pilot)
        assert app.workbench.handle.adapter is None and app.workbench.state.adapter == ""


@pytest.mark.parametrize("fields, fragment", [
    ({"steps": "three"}, "max steps must be a whole number"),
    ({"lang": "xx"}, "xx"),
    ({"set": ""}, "the target setup needs a neuron set"),
    ({"name": "no spaces"}, "bad adapter name"),
    ({"lang": "fr"}, "has no neurons for fr"),  # found in the launch thread, from the stored set
    ({"lang": "de"}, "de"),  # the demo corpus has no German text
])
async def test_bad_input_in_the_form_is_a_notification_and_launches_nothing(make_app, lape_session, fields, fragment):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await open_form(app, pilot, **fields)
        await pilot.click("#ft-launch")
        await settle(app, pilot)
        assert isinstance(app.screen, FinetuneScreen), "the form stays open to fix the input"
        assert [m for m in notifications(app) if fragment in m], notifications(app)
        assert not app.screen.query_one("#ft-launch").disabled
        assert app.workbench.session.jobs() == []


def test_loss_curve_snapshot(snap_compare, demo, tmp_path):
    # A finished 120-step fine-tune written into the store: its row selected, its curve below.
    fake_finetune_session(tmp_path, "ft").close()
    app = create_app(session="ft", root=tmp_path, handle=demo)

    async def run(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("f8")
        await settle(pilot.app, pilot)
        pilot.app.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_finetune_form_snapshot(snap_compare, make_app, lape_session):
    # The form's defaults on a session with a LAPE set over en and zh.
    async def run(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("ctrl+f")
        await pilot.pause()
        pilot.app.set_focus(None)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run)
