"""`generate`, `ppl` and `score` from the command line on the demo model: output, recording, and
every bad input from the issue (one-line error + hint, exit 2, no traceback)."""

from __future__ import annotations

import json

import pytest
from test_cli_engine import assert_error, run

from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.session.store import Session


@pytest.fixture()
def sessions(tmp_path):
    root = tmp_path / "sessions"
    with Session.open("t", root) as session:
        neurons = NeuronSet("manual", {}, 6, 768, {"zh": [[4, 10], [5, 20], [3, 7]], "en": []})
        session.add("neuron_set", "handmade", {"set": neurons.to_json()}, {"method": "manual"})
    return ["--sessions-dir", root, "--session", "t"]


def test_generate_compare_json_is_recorded(capsys, sessions, tmp_path):
    code, out, _ = run(capsys, "generate", *sessions, "--prompt", "今天我们", "--intervene", "handmade:zh=5",
                       "--compare", "--max-new-tokens", "6", "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["label"] for r in data["rows"]] == ["baseline", "intervened"]
    assert data["rows"][1]["specs"] == ["handmade:zh=5"]
    with Session.open("t", tmp_path / "sessions", create=False) as session:
        assert session.latest("generation").id == data["record"]


def test_generate_prints_both_rows(capsys, sessions):
    code, out, _ = run(capsys, "generate", *sessions, "--prompt", "The river", "--intervene", "4.10,5.20=x2",
                       "--compare", "--max-new-tokens", "4")
    assert code == 0 and out.count("The river") == 2 and "[baseline]" in out and "4.10,5.20=x2" in out


def test_ppl_with_intervention_and_matrix(capsys, sessions):
    code, out, _ = run(capsys, "ppl", *sessions, "--langs", "zh,en", "--intervene", "handmade:zh=zero", "--json")
    rows = json.loads(out)["rows"]
    assert code == 0 and [r["lang"] for r in rows] == ["zh", "en"]
    assert all(r["relative"] == pytest.approx((r["intervened"] - r["ppl"]) / r["ppl"]) for r in rows)
    code, out, _ = run(capsys, "ppl", *sessions, "--langs", "zh,en", "--matrix", "--set", "handmade", "--json")
    data = json.loads(out)
    assert code == 0 and data["rows"] == ["zh"] and "en" in data["skipped"]
    assert data["ppl"]["zh"]["en"] == pytest.approx(rows[1]["intervened"])  # same lines, same writes


def test_score_sample(capsys, sessions):
    code, out, _ = run(capsys, "score", *sessions, "--task", "xnli", "--lang", "zh", "--sample", "2",
                       "--intervene", "handmade:zh=zero")
    assert code == 0 and "premise:" in out and "[baseline]" in out and "[intervened]" in out and "p(entail" in out


@pytest.mark.parametrize("spec,fragments", [
    ("lape:zh=p91", ["value 'p91'", "SOURCE[:LANG]=VALUE"]),
    ("lape:zh=zero@middle", ["positions 'middle'"]),
    ("handmade:hi=zero", ["no neurons for hi", "zh, en"]),
    ("handmade:en=zero", ["selects no neurons for en"]),
    ("3.7:hi=p90", ["needs", "lsn-explorer stats"]),
    ("3.900=zero", ["900"]),
])
def test_generate_bad_interventions(capsys, sessions, spec, fragments):
    code, _, err = run(capsys, "generate", *sessions, "--prompt", "hello", "--intervene", spec)
    assert_error(code, err, *fragments)


def test_prompt_longer_than_the_context(capsys, sessions):
    code, _, err = run(capsys, "generate", *sessions, "--prompt", "the river " * 100)
    assert_error(code, err, "exceeds the model's context of 128")


def test_unknown_sample_and_malformed_task_file(capsys, sessions, tmp_path):
    code, _, err = run(capsys, "score", *sessions, "--task", "xnli", "--lang", "en", "--sample", "999")
    assert_error(code, err, "no sample 999")
    code, _, err = run(capsys, "score", *sessions, "--task", "xnli", "--lang", "tr")
    assert_error(code, err, "no xnli file for tr")
    folder = tmp_path / "bench" / "xnli"
    folder.mkdir(parents=True)
    (folder / "xnli_test_en.tsv").write_text("id\tpremise\thypothesis\tlabel\n1\ta\tb\t0\n2\tonly two\n",
                                             encoding="utf-8")
    code, _, err = run(capsys, "score", *sessions, "--task", "xnli", "--lang", "en", "--data-dir", tmp_path / "bench")
    assert_error(code, err, "xnli_test_en.tsv:3", "expected 4")
