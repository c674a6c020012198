"""Messages a panel posts for another tab's work, routed by the app (Pilot, demo model)."""

from __future__ import annotations

from textual.widgets import DataTable, TabbedContent
from tui_helpers import SIZE, settle

from lsn_explorer.tui.messages import RerunRequested, SessionChanged
from lsn_explorer.tui.panels.history import HistoryPanel


async def test_history_rerun_goes_to_the_tab_that_made_the_entry(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.workbench.generate("Alpha", max_new_tokens=2)
        app.workbench.choose_sample("xnli", "en", 1)
        app.workbench.score()  # newest: the top row of History
        app.post_message(SessionChanged())
        await pilot.press("f7")
        await pilot.pause()
        reruns: list[str] = []
        tabs: list[str] = []
        app.query_one(HistoryPanel).message_signal.subscribe(
            app, lambda m: reruns.append(m.entry.kind) if isinstance(m, RerunRequested) else None)
        app.query_one(TabbedContent).message_signal.subscribe(
            app, lambda m: tabs.append(m.pane.id) if isinstance(m, TabbedContent.TabActivated) else None)
        await pilot.press("r")
        await settle(app, pilot)
        assert reruns == ["score"] and tabs[:1] == ["score"]
        assert app.query_one(TabbedContent).active == "score"  # and stays there (was: bounced to History)
        assert [r.payload["sample"] for r in app.workbench.session.records("score")] == [1, 1]
        await pilot.press("f7")
        table = app.query_one("#history-table", DataTable)
        table.move_cursor(row=table.row_count - 1)  # the oldest entry: the generation
        await pilot.press("r")
        await settle(app, pilot)
        assert reruns == ["score", "generation"] and "generate" in tabs
        assert app.query_one(TabbedContent).active == "generate"
        assert [r.payload["prompt"] for r in app.workbench.session.records("generation")] == ["Alpha", "Alpha"]
        assert table.row_count == 4


async def test_every_tab_key_pressed_at_once_after_launch_focuses_its_tab(make_app):
    # Tabs mount lazily after the first paint; a tab key pressed before its panel had composed
    # found the panel but not the field to focus, and the app died (NoMatches '#method').
    from lsn_explorer.tui.panels.base import Panel

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        for key in ("f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10"):
            await pilot.press(key)
        await settle(app, pilot)
        assert app.return_code is None  # still running
        panel = app.query_one(TabbedContent).active_pane.query_one(Panel)
        assert type(panel).__name__ == "AnalysisPanel"
        assert app.focused is panel.query_one(panel.DEFAULT_FOCUS)
