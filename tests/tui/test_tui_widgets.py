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
    # KeyFooter draws the keys as one line; Textual's Footer, mounted beside it, rebuilds its key
    # widgets from scratch on every change: the keys, their order and their state must agree, and
    # the line must read as Textual's keys do.
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey
    from tui_helpers import SIZE, settle

    from lsn_explorer.tui.widgets.footer import KeyFooter

    def stock_keys(footer) -> list[tuple[str, str, bool, bool]]:
        return [(key.key, key.description, not key._disabled, key.has_class("-command-palette"))
                for key in footer.query_children(FooterKey)]

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
            shown = [(k.key, k.description, k.enabled, k.palette) for k in ours.keys]
            assert shown == stock_keys(stock), key
            line = ours.render().plain
            assert line.endswith("▏^p palette ") and len(line) == ours.size.width, key
            left = line.index("▏")  # keys that do not fit are cut at the palette's key, as Textual's are
            keys = "".join(f" {k.display} {k.description} " for k in ours.keys if not k.palette)
            assert line[:left].rstrip() == keys[:left].rstrip(), key
            seen.add(tuple(shown))
        assert len(seen) > 3  # the tabs do show different keys


async def test_a_tab_switch_repaints_the_key_footer_without_laying_out_the_screen(make_app, monkeypatch):
    # Issue 17: Textual's Footer changed width with its keys' text, so every tab switch laid the
    # whole screen out again (twice). The key line has one size whatever it shows.
    from textual.widget import Widget
    from tui_helpers import SIZE, settle

    from lsn_explorer.tui.widgets.footer import KeyFooter

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        footer = app.query_one(KeyFooter)
        asked: list[bool] = []  # layout=… of every refresh the footer or a widget inside it asks for
        refresh = Widget.refresh

        def recorded(widget, *regions, **kwargs):
            if widget is footer or footer in widget.ancestors:
                asked.append(bool(kwargs.get("layout")))
            return refresh(widget, *regions, **kwargs)

        monkeypatch.setattr(Widget, "refresh", recorded)
        before = footer.render().plain
        await pilot.press("f4")
        await pilot.pause()
        assert footer.render().plain != before and asked and not any(asked)


async def test_a_click_on_a_footer_key_presses_it_and_hovering_shows_its_tooltip(make_app):
    from tui_helpers import SIZE, settle

    from lsn_explorer.tui.screens.help import HelpScreen
    from lsn_explorer.tui.widgets.footer import KeyFooter

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        footer = app.query_one(KeyFooter)
        line = footer.render().plain
        x = line.index(" f1 Help ") + 2
        gap = line.index("▏") - 1  # a blank cell between the last key and the palette's bar
        assert footer.key_at(x).key == "f1" and line[gap] == " " and footer.key_at(gap) is None
        plain = footer.render().get_style_at_offset(app.console, x)
        await pilot.hover(KeyFooter, offset=(x, 0))
        assert footer._hover is footer.key_at(x) and footer.tooltip == (footer._hover.tooltip or None)
        assert footer.render().get_style_at_offset(app.console, x).bgcolor != plain.bgcolor  # highlighted
        await pilot.click(KeyFooter, offset=(x, 0))
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


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
