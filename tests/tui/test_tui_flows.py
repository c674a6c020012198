"""The app's flows on the demo model, driven through Pilot (real engine, real session store)."""

from __future__ import annotations

from textual.widgets import DataTable, Static, Switch
from tui_helpers import SIZE, notifications, settle, type_into

from lsn_explorer.tui.panels.interventions import InterventionRow

ZH_PROMPT = "我们今天"


async def test_stats_lape_switch_generate_and_reopen(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "demo-model" in str(app.query_one("#status", Static).content)
        # Languages: en and zh are ticked by default; collect 1500 tokens each.
        await pilot.press("f2")
        await type_into(pilot, "#stats-tokens", "1500")
        await pilot.click("#stats-compute")
        await settle(app, pilot)
        assert {r.name for r in app.workbench.session.records("stats")} == {"en", "zh"}
        assert "zh 1,500" in str(app.query_one("#stats-summary", Static).content)
        # Neurons: LAPE with a 5% top rate.
        await pilot.press("f3")
        await type_into(pilot, "#method-params", "top_rate=0.05")
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        counts = app.query_one("#set-counts", DataTable)
        assert counts.row_count == 2
        assert app.workbench.neuron_set_names() == ["lape"]
        # Interventions: type a spec, then flip its switch on.
        await pilot.press("f4")
        await type_into(pilot, "#iv-spec", "lape:zh=zero")
        await pilot.press("enter")
        await pilot.pause()
        row = app.query_one(InterventionRow)
        assert not row.enabled
        row.query_one(Switch).toggle()
        await pilot.pause()
        assert [r.spec for r in app.workbench.state.rows if r.enabled] == ["lape:zh=zero"]
        assert "lape·zh = zero" in str(app.query_one("#iv-active", Static).content)
        # Generate: both panes stream, and they differ.
        await pilot.press("f5")
        await type_into(pilot, "#prompt", ZH_PROMPT)
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        baseline = app.query_one("#pane-baseline .pane-text", Static).content
        intervened = app.query_one("#pane-intervened .pane-text", Static).content
        assert str(baseline).startswith(f"» {ZH_PROMPT}") and len(str(baseline)) > len(ZH_PROMPT) + 3
        assert baseline != intervened
        assert "PPL" in str(app.query_one("#pane-intervened .pane-footer", Static).content)
        assert "lape·zh = zero" in str(app.query_one("#pane-intervened .pane-title").content)
        history = app.workbench.session.records("generation")
        assert len(history) == 1 and history[0].payload["prompt"] == ZH_PROMPT
        assert not [m for m in notifications(app) if "error" in m.lower()]

    reopened = make_app()
    async with reopened.run_test(size=SIZE) as pilot:
        await settle(reopened, pilot)
        rows = list(reopened.query(InterventionRow))
        assert [(r.row.spec, r.enabled) for r in rows] == [("lape:zh=zero", True)]
        assert reopened.query_one("#prompt").value == ZH_PROMPT
        assert reopened.query_one("#history-table", DataTable).row_count == 1
        assert set(reopened.workbench.state.languages) == {"en", "zh"}


async def test_a_tab_key_pressed_before_the_lazy_panels_mount_waits_for_them(make_app):
    from lsn_explorer.tui.panels.generate import GeneratePanel

    app = make_app("early")
    async with app.run_test(size=SIZE) as pilot:
        # no settle: the key comes before the tabs other than Languages have mounted
        mounted_before = bool(app.query(GeneratePanel))
        await app.action_show_tab("generate")
        assert not mounted_before  # otherwise this test no longer exercises the early key
        await pilot.pause()
        assert app.query_one(GeneratePanel).is_mounted
        assert app.focused is not None and app.focused.id == "prompt"
