"""Small widgets rendered on their own."""

from __future__ import annotations

from lsn_explorer.tui.widgets.charts import heat_cell


def test_an_undefined_jaccard_is_a_dash_not_a_crash():
    # Two languages without neurons (the demo's LAPE set has none for en) overlap 0/0 = NaN;
    # the Neurons tab used to crash converting it to a colour.
    assert heat_cell(float("nan")).plain.strip() == "–"
    cell = heat_cell(0.5)
    assert cell.plain.strip() == "0.50" and "on rgb(42,63,127)" in str(cell.style)
