"""The Analysis tab's view model without a model: the request its fields make, the conditions the
switch rows make, and the charts and tables picked out of a hand-written result."""

from __future__ import annotations

import pytest

from lsn_explorer.errors import LsnError
from lsn_explorer.workbench.latent import AnalysisRequest, figure, spec_for_each_language, table
from lsn_explorer.workbench.state import SwitchRow


@pytest.mark.parametrize("spec, expected", [
    ("type1:ja=zero@last", "type1:{lang}=zero@last"),
    ("lape:zh=p90@prompt/a", "lape:{lang}=p90@prompt/a"),
    ("#12:ja=x0.5", "#12:{lang}=x0.5"),
    ("3.17,5.200=zero", "3.17,5.200=zero"),  # a typed list has no language's neurons to swap
])
def test_a_row_with_each_languages_own_neurons(spec, expected):
    assert spec_for_each_language(spec) == expected


def test_the_request_from_the_fields():
    request = AnalysisRequest.from_fields(langs="ja, zh,ja", lines="1,000", conditions="random", each_language=True)
    assert request == AnalysisRequest(("en", "ja", "zh"), 1000, "random", True)
    for langs, lines, conditions, message in (("ja", "4o", "none", "lines must be a whole number"),
                                              ("ja", "1", "none", "lines 1 are too few"),
                                              ("ja", "40", "all", "unknown conditions"),
                                              ("jp", "40", "none", "unknown language code 'jp'")):
        with pytest.raises(LsnError, match=message):
            AnalysisRequest.from_fields(langs=langs, lines=lines, conditions=conditions, each_language=True)


def test_conditions_from_the_switch_rows():
    rows = [SwitchRow("type1:ja=zero@last"), SwitchRow("lape:zh=p90", False), SwitchRow("type1:zh=zero@last")]
    assert AnalysisRequest(conditions="none").intervene(rows) == []
    # Every switched-on row in one condition, as Generate and Score apply them; a repeat once.
    assert AnalysisRequest(conditions="rows").intervene(rows) == ["type1:{lang}=zero@last"]
    assert AnalysisRequest(conditions="random", each_language=False).intervene(rows) == \
        ["type1:ja=zero@last + type1:zh=zero@last"]
    with pytest.raises(LsnError, match="no intervention row is switched on"):
        AnalysisRequest(conditions="rows").intervene([SwitchRow("type1:ja=zero", False)])


PARALLEL = {
    "analysis": "parallel", "languages": ["en", "ja"], "depths": 3,
    "conditions": [{"key": "none", "label": "none"}, {"key": "iv1", "label": "type1:{lang}=zero@last"}],
    "results": {"none": {"ja": {"parallel": [0.5, 0.9, 0.8], "nonparallel": [0.4, 0.7, 0.7], "gap": [0.1, 0.2, 0.1]}},
                "iv1": {"ja": {"parallel": [0.5, 0.6, 0.7], "nonparallel": [0.4, 0.55, 0.65], "gap": [0.1, 0.05, 0.05]}}},
    "summary": {"middle_depths": [1, 1], "conditions": {"none": {"ja": {"mid_gap": 0.2, "mid_shrink": 0.0}},
                                                         "iv1": {"ja": {"mid_gap": 0.05, "mid_shrink": 0.15}}}},
}


def test_parallel_chart_and_table_are_the_results_values():
    shown = figure(PARALLEL, 2)
    gap = shown.charts[0]
    assert gap.title.startswith("gap") and gap.band == (1, 1) and gap.marker == 2
    assert [(s.name, s.ys, s.group, s.style) for s in gap.series] == [
        ("ja", [0.1, 0.2, 0.1], 1, "solid"), ("ja·iv1", [0.1, 0.05, 0.05], 1, "dashed")]
    assert shown.styles == [("solid", "none"), ("dashed", "type1:{lang}=zero@last")]
    numbers = table(PARALLEL, 2)
    assert numbers.columns == ["cond", "lang", "mid gap", "shrink", "gap@2"]
    assert numbers.rows == [["none", "ja", 0.2, 0.0, 0.1], ["iv1", "ja", 0.05, 0.15, 0.05]]


def test_pca_scatter_and_mean_positions():
    result = {"analysis": "pca", "languages": ["en", "ja"], "layer": 1, "conditions": [{"key": "none", "label": "none"}],
              "results": {"none": {"coords": {"en": [[1.0, 2.0], [3.0, 4.0]], "ja": [[-1.0, 0.0], [-3.0, -2.0]]},
                                   "explained": [0.75, 0.125]}}}
    (chart,) = figure(result, 1).charts
    assert chart.kind == "scatter" and chart.title == "depth 1 · none · PC1 75.0 % · PC2 12.5 %"
    assert [(s.name, s.xs, s.ys, s.style) for s in chart.series] == [
        ("en", [1.0, 3.0], [2.0, 4.0], "points"), ("ja", [-1.0, -3.0], [0.0, -2.0], "points")]
    assert table(result, 1).rows == [["none", "en", 2.0, 3.0], ["none", "ja", -2.0, -1.0]]
