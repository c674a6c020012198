"""Small widgets rendered on their own."""

from __future__ import annotations

from lsn_explorer.tui.widgets.charts import heat_cell


def test_an_undefined_jaccard_is_a_dash_not_a_crash():
    # Two languages without neurons (the demo's LAPE set has none for en) overlap 0/0 = NaN;
    # the Neurons tab used to crash converting it to a colour.
    assert heat_cell(float("nan")).plain.strip() == "–"
    cell = heat_cell(0.5)
    assert cell.plain.strip() == "0.50" and "on rgb(42,63,127)" in str(cell.style)


async def test_the_key_footer_shows_what_textuals_own_footer_shows_on_every_tab(make_app):
    # KeyFooter updates its key widgets in place and hides the ones a tab does not need; Textual's
    # Footer, mounted beside it, rebuilds from scratch on every change: the visible keys must agree.
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey
    from tui_helpers import SIZE, settle

    from lsn_explorer.tui.widgets.footer import KeyFooter

    def keys(footer) -> list[tuple[str, str, bool]]:
        return [(key.key, key.description, key._disabled) for key in footer.query_children(FooterKey)
                if key.display and not key.has_class("-command-palette")]

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        stock = Footer(id="stock")
        await app.screen.mount(stock)
        ours = app.query_one(KeyFooter)
        seen = set()
        for key in ("f3", "f5", "f4", "f10", "f2", "f6", "f9", "f7", "f8", "f5", "f2"):
            await pilot.press(key)
            await pilot.pause()
            await pilot.pause()
            assert keys(ours) == keys(stock), key
            seen.add(tuple(keys(ours)))
        assert len(seen) > 3  # the tabs do show different keys
        hidden = [key for key in ours.query_children(FooterKey) if not key.display]
        assert hidden  # F2 shows fewer keys than the widest tab: the rest wait hidden


async def test_a_filled_table_is_drawn_at_its_cells_width_before_any_idle_event_and_keeps_row_keys():
    from rich.text import Text
    from textual.app import App
    from textual.widgets import DataTable

    from lsn_explorer.tui.widgets import tables

    class One(App):
        def compose(self):
            yield DataTable(cursor_type="row")

    app = One()
    async with app.run_test(size=(60, 8)) as pilot:
        grid = app.query_one(DataTable)
        grid.add_columns("job", "state")
        await pilot.pause()
        tables.fill(grid, ["job", "state"], [["12", Text("running", style="bold")], ["3", "finished"]], keys=["12", "3"])
        lines = [grid.render_line(y).text.rstrip() for y in range(3)]  # painted before the idle event
        assert lines == [" job  state", " 12   running", " 3    finished"], lines
        assert grid.get_row_index("3") == 1
        tables.fill(grid, ["job", "state"], [["4", "queued"]])  # narrower: the columns shrink with it
        assert grid.render_line(1).text.rstrip() == " 4    queued"
