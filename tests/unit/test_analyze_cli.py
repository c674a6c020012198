"""`lsn-explorer analyze`: outputs (table, JSON, CSV, PNG), the state cache across runs, and bad
input — one error line and one hint, exit 2, nothing stored."""

from __future__ import annotations

import csv
import json

import pytest

from lsn_explorer import cli
from lsn_explorer.core.latent.analyses import ANALYSES, CSV_FIELDS
from lsn_explorer.core.latent.states import STATES_KIND
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.session.store import Session


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def where(sessions):
    return ["--sessions-dir", sessions, "--session", "t"]


def stored_states(sessions) -> int:
    if not (sessions / "t").is_dir():
        return 0
    with Session.open("t", sessions, create=False) as session:
        return len(session.records(STATES_KIND))


def add_set(sessions):
    with Session.open("t", sessions) as session:
        neurons = {"ja": [(1, 5), (2, 7), (2, 300)], "zh": [(0, 9), (3, 100)]}
        session.add("neuron_set", "t1", {"set": NeuronSet("manual", {}, 6, 768, neurons).to_json()}, {})


def test_cli_analyses_match_core_names():
    from lsn_explorer.cli.analyze import ANALYSES as CLI_ANALYSES

    assert CLI_ANALYSES == ANALYSES


def test_mknn_json_csv_png_and_cached_rerun(tmp_path, capsys):
    sessions = tmp_path / "sessions"
    add_set(sessions)
    args = ["analyze", "mknn", *where(sessions), "--langs", "en,ja,zh", "--lines", "12", "--k", "3",
            "--intervene", "t1:{lang}=zero@last", "--random-baseline", "--json",
            "--csv", tmp_path / "m.csv", "--png", tmp_path / "m.png"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    result = json.loads(out)
    assert result["analysis"] == "mknn" and result["k"] == 3 and result["depths"] == 7
    assert [c["key"] for c in result["conditions"]] == ["none", "iv1", "random1"]
    assert set(result["results"]["iv1"]) == {"ja", "zh"}
    assert all(0 <= v <= 1 for c in result["results"].values() for curve in c.values() for v in curve)
    with open(tmp_path / "m.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == 3 * 2 * 7  # conditions × languages × depths
    assert float(rows[0]["value"]) == pytest.approx(result["results"]["none"]["ja"][0])
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert stored_states(sessions) == 7  # en, ja, zh plain; ja, zh intervened; ja, zh random
    # Another analysis of the same text and conditions runs no model work and stores nothing new.
    code, out, err = run(capsys, "analyze", "parallel", *where(sessions), "--langs", "en,ja,zh", "--lines", "12",
                         "--intervene", "t1:{lang}=zero@last", "--random-baseline")
    assert code == 0, err
    assert "states" not in err and stored_states(sessions) == 7
    assert "gap (parallel − non-parallel)" in out and "middle depths 2–4" in out


@pytest.mark.parametrize("analysis", ["centroids", "pca", "cevr"])
def test_each_analysis_prints_a_table(tmp_path, capsys, analysis):
    code, out, err = run(capsys, "analyze", analysis, *where(tmp_path), "--langs", "ja,hi", "--lines", "8",
                         "--layer", "3")
    assert code == 0, err
    assert out.startswith(f"{analysis} · en, ja, hi · 8 sentences")
    assert {"centroids": "centroid cosine at depth 3", "pca": "depth 3: share of variance",
            "cevr": "components for 99 %"}[analysis] in out


@pytest.mark.parametrize("make_args, fragments", [
    (lambda t: ["parallel", "--langs", "en,de"], ["no corpus text for de", "languages with text there"]),
    (lambda t: ["parallel", "--langs", "ja", "--corpus", t / "uneven"], ["different line counts"]),
    (lambda t: ["mknn", "--langs", "ja", "--lines", "5", "--k", "10"], ["k = 10 neighbours", "--k"]),
    (lambda t: ["mknn", "--langs", "ja", "--lines", "5", "--k", "0"], ["k = 0 neighbours"]),
    (lambda t: ["pca", "--langs", "ja", "--lines", "5", "--layer", "9"], ["beyond this model's depths 0–6"]),
    (lambda t: ["pca", "--langs", "ja", "--lines", "5", "--layer", "-1"], ["beyond this model's depths"]),
    (lambda t: ["centroids", "--langs", "en"], ["only English was given"]),
    (lambda t: ["centroids", "--langs", "ja", "--lines", "1"], ["too few"]),
    (lambda t: ["centroids", "--langs", "xx"], ["xx"]),
    (lambda t: ["parallel", "--langs", "ja", "--random-baseline"], ["none was given"]),
    (lambda t: ["parallel", "--langs", "ja", "--intervene", "1.5,2.7=zero", "--random-baseline"], ["lists neurons"]),
    (lambda t: ["parallel", "--langs", "ja", "--intervene", "nosuch:ja=zero"], ["no neuron set 'nosuch'"]),
    (lambda t: ["parallel", "--langs", "ja", "--intervene", "t1:ja=zap"], ["zap"]),
    (lambda t: ["parallel", "--langs", "ja", "--png", t], ["is a folder"]),
    (lambda t: ["parallel", "--langs", "ja", "--batch-size", "0"], ["--batch-size 0"]),
])
def test_bad_input_is_one_error_with_a_hint_and_stores_nothing(tmp_path, capsys, make_args, fragments):
    sessions = tmp_path / "sessions"
    add_set(sessions)
    uneven = tmp_path / "uneven"
    uneven.mkdir()
    (uneven / "en.txt").write_text("One.\nTwo.\nThree.\n", encoding="utf-8")
    (uneven / "ja.txt").write_text("一。\n二。\n", encoding="utf-8")
    code, out, err = run(capsys, "analyze", *make_args(tmp_path), *where(sessions))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 2 and "\nhint: " in err, err
    assert "Traceback" not in err and out == ""
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert stored_states(sessions) == 0
