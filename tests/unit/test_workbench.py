"""The workbench state and the input it parses (no model needed)."""

from __future__ import annotations

import pytest

from lsn_explorer.errors import LsnError
from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.state import SwitchRow
from lsn_explorer.workbench.views import parse_params


def test_state_is_restored_when_the_session_is_reopened(tmp_path):
    bench = Workbench.open("s", tmp_path)
    bench.set_languages(["ZH", "hi"])
    bench.set_rows([SwitchRow("lape:zh=zero"), SwitchRow("3.17=x2@last", enabled=False)])
    bench.state.prompt = "今天"
    bench.save_state()
    bench.close()
    again = Workbench.open("s", tmp_path)
    assert again.state.languages == ["zh", "hi"]
    assert again.state.rows == [SwitchRow("lape:zh=zero", True), SwitchRow("3.17=x2@last", False)]
    assert again.state.prompt == "今天"
    assert [iv.spec for iv in again.active()] == ["lape:zh=zero"]
    before = len(again.session.records("workbench"))
    again.save_state()  # unchanged state adds no record
    assert len(again.session.records("workbench")) == before


def test_bad_rows_and_languages_are_refused(tmp_path):
    bench = Workbench.open("s", tmp_path)
    with pytest.raises(LsnError, match="bad intervention"):
        bench.set_rows([SwitchRow("lape:zh=p42")])
    with pytest.raises(LsnError, match="xx"):
        bench.set_languages(["xx"])
    with pytest.raises(LsnError, match="no model"):
        bench.require_model()


@pytest.mark.parametrize("method, text, expected", [
    ("lape", "top_rate=0.05", {"top_rate": 0.05}),
    ("lape", "top_rate=0.02, bar_ratio=0.9", {"top_rate": 0.02, "bar_ratio": 0.9}),
    ("type1", "top_n=200", {"top_n": 200}),
    ("random", "", {}),
])
def test_parse_params(method, text, expected):
    assert parse_params(method, text) == expected


@pytest.mark.parametrize("method, text, message", [
    ("lape", "top_rate", "bad parameter"),
    ("lape", "top_n=3", "bad parameter"),
    ("type2", "top_n=many", "not a number"),
    ("nope", "", "unknown method"),
])
def test_parse_params_errors(method, text, message):
    with pytest.raises(LsnError, match=message):
        parse_params(method, text)


def test_neuron_text_must_be_layer_dot_index(tmp_path):
    bench = Workbench.open("s", tmp_path)
    with pytest.raises(LsnError, match="not a neuron"):
        bench.neuron_profile("3:17")


@pytest.mark.parametrize("method, text, message", [
    # Regression (issue 11.4): out-of-range values were accepted and stored.
    ("lape", "top_rate=2", "out of range"),
    ("lape", "top_rate=-1", "out of range"),
    ("lape", "top_rate=0", "out of range"),
    ("lape", "filter_rate=1", "out of range"),
    ("actprob90p", "rate=-0.5", "out of range"),
    ("type1", "top_n=0", "out of range"),
    ("type1", "top_n=2.5", "not a number"),
    ("type2", "layers=a-b", "bad layer list"),
])
def test_parse_params_refuses_out_of_range_values(method, text, message):
    with pytest.raises(LsnError, match=message):
        parse_params(method, text)


def test_parse_params_reads_candidate_layers():
    assert parse_params("type1", "top_n=200, layers=1-3,5") == {"top_n": 200, "layers": [1, 2, 3, 5]}
