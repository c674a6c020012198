"""Regressions for the defects a new user hit in wave 1 (issue 11), from the command line.

Each test failed on the code before the fix: parameters out of range were stored, statistics of
different precisions were mixed, OS paths and device strings ended in tracebacks, piped tables
were cut, a switched-on row's set was replaced silently.
"""

from __future__ import annotations

import json

import pytest

from lsn_explorer.session.store import Session
from lsn_explorer.workbench.state import STATE_KIND
from tests.unit.test_cli_engine import assert_error, base, corpus, run  # noqa: F401 (fixture)

NO_MODEL = "/no/such/model"  # a command that reached model loading would fail on this path instead


@pytest.mark.parametrize("argv, fragment", [
    (["identify", "--method", "lape", "--top-rate", "2"], "top_rate 2.0 is out of range"),
    (["identify", "--method", "lape", "--top-rate", "-1"], "out of range"),
    (["identify", "--method", "lape", "--top-rate", "0"], "out of range"),
    (["identify", "--method", "lape", "--filter-rate", "1.5"], "filter_rate"),
    (["identify", "--method", "actprob90p", "--rate", "-0.5"], "rate -0.5 is out of range"),
    (["identify", "--method", "type1", "--langs", "ja", "--top-n", "0", "--model", NO_MODEL], "top_n 0"),
    (["identify", "--method", "type1", "--langs", "ja", "--depth", "1.5", "--model", NO_MODEL], "depth"),
    (["identify", "--method", "type1", "--langs", "ja", "--layers", "x", "--model", NO_MODEL], "bad layer list"),
    (["identify", "--method", "type1", "--langs", "ja", "--layers", "1-2", "--depth", "0.5", "--model", NO_MODEL],
     "both"),
    (["identify", "--method", "lape", "--top-n", "5"], "--top-n is not a parameter of lape"),
    (["identify", "--method", "lapee"], "did you mean lape"),
    (["stats", "--langs", "en", "--tokens", "-5", "--model", NO_MODEL], "max_tokens -5 is out of range"),
    (["stats", "--langs", "en", "--tokens", "0", "--model", NO_MODEL], "max_tokens 0"),
    (["stats", "--langs", "en", "--window", "0", "--model", NO_MODEL], "window 0 is out of range"),
    (["stats", "--langs", "en", "--batch-size", "0", "--model", NO_MODEL], "batch_size 0"),
    (["stats", "--langs", "en", "--bins", "1", "--model", NO_MODEL], "bins 1"),
])
def test_out_of_range_parameters_fail_before_any_work(capsys, tmp_path, argv, fragment):
    sessions = ["--sessions-dir", tmp_path / "sessions", "--session", "t"]
    code, _, err = run(capsys, *argv, *sessions)
    assert_error(code, err, fragment)
    assert "512" not in err.splitlines()[0]  # `--window 0` used to be reported as "window 512"
    assert not (tmp_path / "sessions" / "t").exists() or not Session.open("t", tmp_path / "sessions").records()


def test_ppxc_with_an_unknown_set_fails_before_the_model_loads(capsys, tmp_path):
    code, _, err = run(capsys, "ppl", "--session", "t", "--sessions-dir", tmp_path / "sessions", "--langs", "en,zh",
                       "--matrix", "--set", "nosuch", "--model", NO_MODEL)
    assert_error(code, err, "no neuron set 'nosuch'")


@pytest.mark.parametrize("command", [["generate", "--prompt", "hi"], ["ppl", "--langs", "en"],
                                     ["score", "--task", "xnli", "--lang", "en"]])
def test_an_unknown_intervention_set_fails_before_the_model_loads(capsys, tmp_path, command):
    code, _, err = run(capsys, *command, "--session", "t", "--sessions-dir", tmp_path / "sessions",
                       "--intervene", "nosuch:zh=zero", "--model", NO_MODEL)
    assert_error(code, err, "no neuron set 'nosuch'")


def test_statistics_of_another_precision_are_refused_and_identify_names_the_difference(
        capsys, tiny_checkpoints, tmp_path, corpus):  # noqa: F811
    args = [*base(tiny_checkpoints, tmp_path), "--corpus", corpus, "--window", "16"]
    assert run(capsys, "stats", *args, "--langs", "en,fr")[0] == 0
    code, _, err = run(capsys, "stats", *args, "--langs", "es", "--dtype", "bfloat16")
    assert_error(code, err, "another model setting", "dtype float32 vs bfloat16", "--allow-mixed")
    with Session.open("t", tmp_path / "sessions") as session:
        assert [r.name for r in session.records("stats")] == ["en", "fr"]  # nothing written
    assert run(capsys, "stats", *args, "--langs", "es", "--dtype", "bfloat16", "--allow-mixed")[0] == 0
    sessions = ["--sessions-dir", tmp_path / "sessions", "--session", "t"]
    code, _, err = run(capsys, "identify", *sessions, "--method", "lape", "--langs", "en,fr,es")
    assert_error(code, err, "statistics of en and es differ", "dtype")
    assert run(capsys, "identify", *sessions, "--method", "lape", "--langs", "en,fr", "--top-rate", "0.1")[0] == 0


@pytest.mark.parametrize("argv, fragment", [
    (["session", "export", "t", "--out", "/dev/null/x"], "/dev/null/x"),
    (["identify", "export", "--name", "lape", "--out", "/dev/null/x.json"], "/dev/null"),
    (["identify", "import", "--file", "/no/such.pth"], "does not exist"),
    (["score", "--file", "/no/such.txt"], "does not exist"),
    (["model", "info", "--device", "tpu"], "unknown device 'tpu'"),
    (["model", "info", "--device", "cuda:7"], "cuda:7"),
    (["model", "info", "--device", "cpu:1"], "unknown device"),
])
def test_paths_and_devices_give_one_line_errors(capsys, tmp_path, argv, fragment):
    with Session.open("t", tmp_path / "sessions"):
        pass
    store = [] if argv[0] == "model" else ["--sessions-dir", tmp_path / "sessions"]
    code, _, err = run(capsys, *argv, *store, *(["--session", "t"] if argv[0] in ("identify", "score") else []))
    assert_error(code, err, fragment)


def test_a_sessions_dir_that_is_a_file_is_an_error(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "session", "show", "t", "--sessions-dir", tmp_path / "file")
    assert_error(code, err, "is a file, not a folder")


def test_piped_ppxc_table_is_complete(capsys, tiny_checkpoints, tmp_path, corpus):  # noqa: F811
    args = [*base(tiny_checkpoints, tmp_path), "--corpus", corpus]
    assert run(capsys, "stats", *args, "--langs", "en,fr,es", "--window", "16")[0] == 0
    sessions = ["--sessions-dir", tmp_path / "sessions", "--session", "t"]
    assert run(capsys, "identify", *sessions, "--method", "lape", "--top-rate", "0.2")[0] == 0
    code, out, _ = run(capsys, "ppl", *args, "--langs", "en,fr,es", "--matrix", "--set", "lape")
    assert code == 0
    assert "…" not in out
    rows = [line.split("\t") for line in out.splitlines() if not line.startswith(("#", "row "))]
    assert rows[0] == ["i \\ j", "en", "fr", "es"]
    assert all(len(row) == 4 for row in rows)
    record = json.loads(run(capsys, "ppl", *args, "--langs", "en,fr,es", "--matrix", "--set", "lape", "--json")[1])
    for row in rows[1:-1]:  # every cell carries the full number
        i = row[0].split()[0]
        for j, text in zip(["en", "fr", "es"], row[1:]):
            delta = record["ppl"][i][j] - record["base"][j]
            assert text.startswith(f"{delta:+.1f}")


def test_identify_show_names_the_set_and_refuses_to_replace_a_switched_on_set(capsys, tiny_checkpoints, tmp_path,
                                                                               corpus):  # noqa: F811
    args = [*base(tiny_checkpoints, tmp_path), "--corpus", corpus, "--window", "16"]
    assert run(capsys, "stats", *args, "--langs", "en,fr,es")[0] == 0
    sessions = ["--sessions-dir", tmp_path / "sessions", "--session", "t"]
    assert run(capsys, "identify", *sessions, "--method", "lape", "--top-rate", "0.1", "--name", "lape5")[0] == 0
    code, out, _ = run(capsys, "identify", "show", *sessions, "--name", "lape5")
    assert code == 0 and out.startswith("lape5 (LAPE):")
    with Session.open("t", tmp_path / "sessions") as session:
        session.add(STATE_KIND, "state", {"rows": [{"spec": "lape5:fr=zero", "enabled": True}]}, {})
        before = session.latest("neuron_set", "lape5").id
    code, _, err = run(capsys, "identify", *sessions, "--method", "lape", "--top-rate", "0.2", "--name", "lape5")
    assert_error(code, err, "used by the switched-on row lape5:fr=zero", "--name lape5-2", "--replace")
    with Session.open("t", tmp_path / "sessions") as session:
        assert session.latest("neuron_set", "lape5").id == before
    assert run(capsys, "identify", *sessions, "--method", "lape", "--top-rate", "0.2", "--name", "lape5",
               "--replace")[0] == 0


def test_type1_candidate_layers_are_chosen_explicitly_and_recorded(capsys, tiny_checkpoints, tmp_path,
                                                                   corpus):  # noqa: F811
    args = [*base(tiny_checkpoints, tmp_path), "--corpus", corpus]
    code, out, err = run(capsys, "identify", *args, "--method", "type1", "--langs", "fr", "--top-n", "5",
                         "--layers", "1")
    assert code == 0, err
    assert "fr: " in err and "sentences" in err  # progress of the model passes
    fr_row = next(line for line in out.splitlines() if line.startswith("fr "))
    assert fr_row.split()[1:] == ["5", "0", "5"]  # count, then per layer: L0 0, L1 5
    with Session.open("t", tmp_path / "sessions") as session:
        params = session.latest("neuron_set", "type1").payload["set"]["params"]
    assert params["layers"] == [1] and params["depth"] is None
    code, _, err = run(capsys, "identify", *args, "--method", "type1", "--langs", "fr", "--layers", "0-9")
    assert_error(code, err, "outside the model's layers 0–1")


def test_a_cancelled_identification_stores_nothing(tiny_checkpoints, tmp_path, corpus):  # noqa: F811
    import threading

    from lsn_explorer.core.model.loading import load_model
    from lsn_explorer.core.neurons.runs import identify
    from lsn_explorer.errors import Cancelled

    handle = load_model(tiny_checkpoints["llama"])
    cancel = threading.Event()
    seen = []

    def progress(lang, done, total):
        seen.append((lang, done, total))
        cancel.set()  # the user presses Esc after the first batch

    with Session.open("t", tmp_path / "sessions") as session:
        with pytest.raises(Cancelled):
            identify(session, "type1", langs=["fr"], params={"top_n": 5}, handle=handle, corpus_dir=corpus,
                     progress=progress, cancel=cancel)
        assert seen and not session.records("neuron_set")
        # a run started after Esc stores nothing either
        with pytest.raises(Cancelled):
            identify(session, "lape", langs=["en", "fr"], params={}, cancel=cancel)
        assert not session.records("neuron_set")


def test_a_typed_neuron_list_out_of_range_names_the_model_s_ranges(capsys, tiny_checkpoints, tmp_path):
    # Regression: the hint blamed "a neuron set made for a different model" for a list the user typed.
    code, _, err = run(capsys, "generate", *base(tiny_checkpoints, tmp_path), "--prompt", "hi",
                       "--intervene", "9.1=zero")
    assert_error(code, err, "layer 9 is beyond the model's 2 layers", "this model has layers 0–1")
    assert "different model" not in err
