"""Persisted specs: validated on construction, stamped with kind and version, tolerant of old
records and unknown keys; a session written by wave-1 code opens and restores the workbench."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lsn_explorer.core.interventions.spec import Intervention, InterventionError, parse_intervention
from lsn_explorer.core.neurons.methods import MethodSpec
from lsn_explorer.core.stats.runs import StatsSettings
from lsn_explorer.errors import LsnError

WAVE1 = Path(__file__).parents[1] / "fixtures" / "wave1-sessions"  # written by c399418 (wave 1)


@pytest.mark.parametrize("fields, fragment", [
    ({"source": "lape", "value": "p91"}, "value 'p91'"),
    ({"source": "lape", "site": "g"}, "site 'g'"),
    ({"source": "lape", "positions": "middle"}, "positions 'middle'"),
    ({"source": "lape", "mode": "exact"}, "mode 'exact'"),
    ({"source": "list"}, "no neurons"),
    ({"source": "no spaces"}, "source"),
])
def test_an_invalid_intervention_fails_at_construction(fields, fragment):
    with pytest.raises(InterventionError, match=fragment):
        Intervention(**fields)


@pytest.mark.parametrize("make, cls", [
    (lambda: parse_intervention("lape:zh=p90@prompt/a"), Intervention),
    (lambda: parse_intervention("3.17,5.200=x0.5"), Intervention),
    (lambda: StatsSettings(site="g", mode="faithful", window=256, max_tokens=1000), StatsSettings),
    (lambda: MethodSpec("type1", {"top_n": 200, "layers": "1-3"}), MethodSpec),
])
def test_specs_round_trip_with_kind_and_version(make, cls):
    spec = make()
    data = spec.to_json()
    assert data["kind"] == cls.KIND and data["version"] == cls.VERSION
    assert cls.from_json(data) == spec


def test_old_records_without_kind_read_and_unknown_keys_warn():
    old = {"source": "lape", "lang": "zh", "value": "p90", "amount": 0.0, "site": "s", "positions": "all",
           "mode": "consistent", "neurons": []}  # what wave 1 stored: no kind, no version
    assert Intervention.from_json(old) == parse_intervention("lape:zh=p90")
    with pytest.warns(UserWarning, match="ignoring unknown keys colour"):
        assert Intervention.from_json(old | {"colour": "red"}) == parse_intervention("lape:zh=p90")


@pytest.mark.parametrize("data, fragment", [
    ({"kind": "intervention", "version": 99, "source": "lape"}, "newer lsn-explorer"),
    ({"kind": "stats_settings", "source": "lape"}, "not a 'intervention'"),
    ({"kind": "intervention", "value": "zero"}, "incomplete"),
    ({"kind": "intervention", "source": "lape", "value": "p91"}, "value 'p91'"),
])
def test_bad_stored_specs_are_clear_errors(data, fragment):
    with pytest.raises(LsnError, match=fragment):
        Intervention.from_json(data)


def test_method_spec_checks_its_parameters():
    with pytest.raises(LsnError, match="top_rate 2 is out of range"):
        MethodSpec("lape", {"top_rate": 2})
    with pytest.raises(LsnError, match="did you mean lape"):
        MethodSpec("lapee")
    assert MethodSpec("type2", {"layers": "4-5"}).params == {"layers": [4, 5]}


def test_a_wave1_session_opens_and_restores_the_workbench(tmp_path):
    from lsn_explorer.core.neurons.runs import load_neuron_set
    from lsn_explorer.workbench import Workbench

    shutil.copytree(WAVE1, tmp_path / "sessions")
    bench = Workbench.open("wave1", tmp_path / "sessions")
    try:
        state = bench.state
        assert state.languages == ["en", "fr", "es"]
        assert [(r.spec, r.enabled) for r in state.rows] == [
            ("lape:fr=zero", True), ("random:es=p90@prompt", False), ("0.3,1.7=x0.5", True)]
        assert (state.task, state.task_lang) == ("xquad", "en")
        assert bench.neuron_set_names() == ["random", "lape"]
        assert load_neuron_set(bench.session, "lape").counts()["fr"] > 0
        assert [h.title for h in bench.history()] == ["the cat"]
        for row in state.rows:  # every stored row still parses and names what the session has
            bench.check_spec(row.spec)
        bench.set_languages(["en", "fr"])  # and the state is written back in today's format
        assert bench.session.latest("workbench").payload["kind"] == "workbench"
    finally:
        bench.close()
    reopened = Workbench.open("wave1", tmp_path / "sessions")
    assert reopened.state.languages == ["en", "fr"] and len(reopened.state.rows) == 3
    reopened.close()
