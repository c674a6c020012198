"""Lists as a person reads them: the Languages ticks without colour, and the History cursor that
stays on its record when new ones arrive (Pilot, demo model)."""

from __future__ import annotations

from textual.widgets import DataTable, ProgressBar, Static
from tui_helpers import SIZE, settle, type_into

from lsn_explorer.tui.messages import SessionChanged


def _plain_rows(widget) -> dict[str, str]:
    """Language code → the row's text as a colourless capture shows it (the part before the code)."""
    rows = {}
    for y in range(widget.size.height):
        text = widget.render_line(y).text
        words = text.split()
        code = next((w for w in words if len(w) == 2 and w.isalpha() and w.islower()), None)
        if code is not None:
            rows[code] = text[:text.index(f" {code} ")]
    return rows


async def test_ticked_and_unticked_languages_differ_without_colour(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        listed = app.query_one("#languages-list")
        rows = _plain_rows(listed)
        assert rows["en"] == rows["zh"]  # ticked by default
        assert rows["fr"] == rows["ja"]  # not ticked
        assert rows["en"] != rows["fr"]
        listed.select("fr")
        await pilot.pause()
        assert _plain_rows(listed)["fr"] == rows["en"]
        assert set(app.workbench.state.languages) == {"en", "fr", "zh"}


async def test_the_languages_cursor_stays_when_the_list_refreshes(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f2", "down", "down", "down")
        listed = app.query_one("#languages-list")
        where = listed.highlighted
        assert where is not None and where > 0
        app.post_message(SessionChanged())  # e.g. statistics finished
        await pilot.pause()
        assert listed.highlighted == where
        await pilot.press("space")  # ticks the row the cursor is on, not the first one
        await pilot.pause()
        assert listed.get_option_at_index(where).value in app.workbench.state.languages
        assert "en" in app.workbench.state.languages


async def test_statistics_already_there_leave_no_spinning_bar(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.workbench.compute_stats(["en", "zh"], max_tokens=300)
        await pilot.press("f2")
        await type_into(pilot, "#stats-tokens", "300")
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert "already there" in str(app.query_one("#stats-progress", Static).content)
        bar = app.query_one("#stats-bar", ProgressBar)
        assert bar.total is not None and bar.percentage == 1.0


async def test_history_keeps_the_cursor_on_its_record_when_a_new_one_arrives(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for prompt in ("Alpha", "Beta"):
            app.workbench.generate(prompt, max_new_tokens=2)
        app.post_message(SessionChanged())
        await pilot.press("f7")
        await pilot.pause()
        table = app.query_one("#history-table", DataTable)
        assert table.row_count == 2
        await pilot.press("down")  # the older entry
        alpha = app.workbench.session.records("generation")[0].id
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == str(alpha)
        # A generation made elsewhere lands on top of the list.
        app.workbench.generate("Gamma", max_new_tokens=2)
        app.post_message(SessionChanged())
        await pilot.pause()
        assert table.row_count == 3
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == str(alpha)
        assert "Alpha" in str(app.query_one("#history-detail").content)
        # R re-runs the entry under the cursor, not the newest one.
        await pilot.press("f7", "r")
        await settle(app, pilot)
        assert app.workbench.session.records("generation")[-1].payload["prompt"] == "Alpha"


async def test_ctrl_t_works_on_the_first_tab_before_anything_is_focused(make_app):
    # Seen in tmux: opening a session straight away left nothing focused, so the Languages
    # panel's Ctrl+T did nothing until F2 or a click.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.focused is not None and app.focused.id == "languages-list"
        await type_into(pilot, "#stats-tokens", "300")  # keeps focus inside the panel
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert {r.name for r in app.workbench.session.records("stats")} == {"en", "zh"}
