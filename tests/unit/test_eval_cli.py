"""`lsn-explorer eval run|show` from the command line: bad input is one error line and a hint with
nothing stored; the grid's rows; the table formats; resuming an evaluation job.

No model is loaded here except by the one detached worker of the resume test: every refusal
comes before the model, and the tables are made from per-sample results stored by hand.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from workers import kill_active_jobs, reap_workers

from lsn_explorer import cli
from lsn_explorer.core.evals.grid import EvalSpec, EvalSpecError, build_rows, cell_specs, parse_grid, random_reference
from lsn_explorer.core.evals.results import RowInfo
from lsn_explorer.core.evals.tables import CSV_FIELDS
from lsn_explorer.core.interventions.spec import InterventionError, parse_intervention
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.jobs.locks import lane_path, try_lock
from lsn_explorer.session.store import Session, now

NEURONS = {"zh": [[0, 3], [2, 17], [5, 700]], "hi": [[1, 4], [3, 9]]}  # on the demo model's 6 × 768 MLPs


@pytest.fixture()
def sessions(tmp_path):
    """Session `t` with one stored neuron set, `manual` (zh, hi), and no statistics."""
    with Session.open("t", tmp_path / "sessions") as session:
        add_set(session, "manual")
    return tmp_path / "sessions"


@pytest.fixture(autouse=True)
def no_worker_left_running(tmp_path):
    """A worker a test started (here or through a `jobs resume` subprocess) ends with it."""
    yield
    kill_active_jobs(tmp_path / "sessions", "t")
    reap_workers()


def add_set(session, name):
    neuron_set = NeuronSet("manual", {}, 6, 768, {lang: list(pairs) for lang, pairs in NEURONS.items()})
    return session.add("neuron_set", name, {"set": neuron_set.to_json()}, {}).id


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(code, err, *fragments):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 2 and "\nhint: " in err, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def where(sessions):
    return ["--sessions-dir", sessions, "--session", "t"]


def nothing_stored(sessions):
    with Session.open("t", sessions, create=False) as session:
        return session.evals() == [] and session.jobs() == []


def data_dir(tmp_path, files):
    """A --data-dir laid out like the benchmarks' releases (and the demo's assets/tasks)."""
    for relative, text in files.items():
        path = tmp_path / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "data"


XNLI_HEADER = "id\tpremise\thypothesis\tlabel\n"
BAD_RUNS = [  # (arguments after --session, data files, error fragments, hint fragments)
    (["--task", "xnl", "--langs", "zh"], {}, ["unknown task 'xnl'"], ["did you mean xnli?"]),
    (["--langs", "zh"], {}, ["needs --task"], ["--task xnli"]),
    (["--task", "xnli"], {}, ["needs --langs"], ["--langs en,fr"]),
    (["--task", "xnli", "--langs", "fr"], {}, ["no xnli file for fr"], ["--data-dir"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "manual:values=zero,p90"], {},
     ["zh · manual=p90", "needs zh's activation statistics"], ["lsn-explorer stats --session t --langs zh"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "manual:hi:values=mean"], {},  # hi's statistics, in zh's cells
     ["zh · manual:hi=mean", "needs hi's activation statistics"], ["--langs hi"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "manual:values=p91"], {},
     ["--grid 'manual:values=p91': p91 is not a grid value"], ["values: zero, mean, p5"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "manual:p90"], {}, ["bad --grid 'manual:p90'"], ["values=V1,V2"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "manual:values=zero@prompt/q"], {},
     ["--grid 'manual:values=zero@prompt/q': modifier 'q'"], ["positions: all prompt"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "lape:values=zero"], {},
     ["has no neuron set 'lape'"], ["stored sets: manual"]),
    (["--task", "xnli", "--langs", "en", "--grid", "manual:values=zero"], {},
     ["en · manual=zero", "has no neurons for en"], ["its languages: zh, hi", "leave that language out"]),
    (["--task", "xnli", "--langs", "zh", "--adapter", "tuned"], {}, ["has no adapter 'tuned'"], ["fine-tune one"]),
    (["--task", "xnli", "--langs", "zh", "--limit", "0"], {}, ["--limit must be at least 1 (got 0)"], ["leave it out"]),
    (["--task", "xnli", "--langs", "zh", "--random-baseline", "2"], {}, ["no --grid was given"], ["add --grid"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "manual:values=zero", "--random-baseline", "101"], {},
     ["--random-baseline must be between 0 and 100"], ["e.g. 3"]),
    (["--task", "xnli", "--langs", "zh", "--grid", "manual:zh:values=zero", "--intervene", "manual:zh=zero"], {},
     ["rows repeat: manual:zh=zero"], ["name each"]),
    (["--task", "xnli", "--langs", "zh", "--data-dir", "{data}"], {"xnli/xnli_test_zh.tsv": ""},  # an empty file
     ["xnli_test_zh.tsv:1: header should be"], ["TSV with that header"]),
    (["--task", "xnli", "--langs", "zh", "--data-dir", "{data}"], {"xnli/xnli_test_zh.tsv": XNLI_HEADER},
     ["xnli has no samples for zh in"], ["check the data file"]),
    (["--task", "xnli", "--langs", "zh", "--data-dir", "{data}"],
     {"xnli/xnli_test_zh.tsv": XNLI_HEADER + "0\tA cat.\tAn animal.\tmaybe\n"}, ["label 'maybe' is not 0, 1 or 2"],
     ["0 entailment"]),
    (["--task", "xquad", "--langs", "zh", "--data-dir", "{data}"], {"xquad/xquad.zh.json": '{"version": "1.1", "data": ['},
     ["xquad.zh.json", "invalid JSON"], ["check the file"]),
    (["--task", "ppl", "--langs", "zh", "--data-dir", "{data}"], {"readme.txt": "nothing here"},
     ["no corpus text for zh in"], []),
    (["--task", "ppl", "--langs", "zh", "--data-dir", "{data}"], {"zh.txt": ""}, ["zh.txt is empty"], ["one sentence"]),
]


@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detach"])
@pytest.mark.parametrize(("args", "files", "errors", "hints"), BAD_RUNS, ids=[b[2][-1][:40] for b in BAD_RUNS])
def test_bad_eval_runs_are_one_line_errors_and_store_nothing(capsys, sessions, tmp_path, detach, args, files, errors,
                                                             hints):
    folder = data_dir(tmp_path, files) if files else None
    argv = [str(folder) if a == "{data}" else a for a in args] + (["--detach"] if detach else [])
    code, out, err = run(capsys, "eval", "run", *where(sessions), *argv)
    assert_error(code, err, *errors)
    hint = err.split("\nhint: ", 1)[1]
    for fragment in hints:
        assert fragment in hint, (fragment, hint)
    assert out == "" and nothing_stored(sessions)


def test_eval_show_refuses_a_session_without_evaluations_or_an_unknown_name(capsys, sessions, tmp_path):
    code, _, err = run(capsys, "eval", "show", *where(sessions))
    assert_error(code, err, "session 't' has no evaluations", "eval run --session t --task xnli")
    code, _, err = run(capsys, "eval", "show", "--sessions-dir", sessions, "--session", "nope")
    assert_error(code, err, "no session named 'nope'")
    assert not (sessions / "nope").exists()
    with Session.open("t", sessions, create=False) as session:
        session.add_eval("first", xnli_spec(session).to_json(), {})
    code, _, err = run(capsys, "eval", "show", *where(sessions), "--name", "second")
    assert_error(code, err, "has no evaluation 'second'", "its evaluations: first")


def xnli_spec(session, **fields):
    rows = build_rows(["manual:values=zero"], session=session)
    return EvalSpec(task="xnli", langs=["zh"], rows=[r.to_json() for r in rows], **fields)


def test_a_name_reused_with_other_settings_or_after_it_finished_is_refused(capsys, sessions):
    with Session.open("t", sessions, create=False) as session:
        first = session.add_eval("x", xnli_spec(session, limit=2).to_json(), {})
    argv = ["eval", "run", *where(sessions), "--task", "xnli", "--langs", "zh", "--grid", "manual:values=zero",
            "--name", "x"]
    for other in (["--limit", "3"], ["--limit", "2", "--batch-size", "4"], ["--limit", "2", "--langs", "zh,hi"]):
        code, _, err = run(capsys, *argv, *other, "--detach")
        assert_error(code, err, "already has an evaluation 'x' with other settings", "another --name")
    with Session.open("t", sessions, create=False) as session:
        session.set_eval(first.id, finished=now())
    code, _, err = run(capsys, *argv, "--limit", "2")  # the same settings, but nothing is left to run
    assert_error(code, err, "evaluation 'x' has already finished", "eval show --session t --name x")
    with Session.open("t", sessions, create=False) as session:
        assert [e.name for e in session.evals()] == ["x"] and session.jobs() == []


# -- the grid's rows ---------------------------------------------------------------------------------

def test_grid_rows_pin_sets_to_record_ids(tmp_path):
    with Session.open("t", tmp_path) as session:
        first = add_set(session, "manual")
        rows = build_rows(["manual:values=zero,p90"], session=session)
        assert rows == [RowInfo("none", "none"),
                        RowInfo("manual=zero", "grid", (f"#{first}:{{lang}}=zero",), "zero", "manual"),
                        RowInfo("manual=p90", "grid", (f"#{first}:{{lang}}=p90",), "p90", "manual")]
        again = add_set(session, "manual")  # identified again later under the same name
        assert build_rows(["manual:values=zero"], session=session)[1].specs == (f"#{again}:{{lang}}=zero",)
        assert rows[1].specs == (f"#{first}:{{lang}}=zero",)  # what a stored evaluation holds does not move
        pinned = build_rows([f"#{first}:values=mean"], session=session)[1]
        assert (pinned.key, pinned.specs, pinned.set_name) == (f"#{first}=mean", (f"#{first}:{{lang}}=mean",), f"#{first}")
        with pytest.raises(InterventionError, match="no neuron set record #99") as info:
            build_rows(["#99:values=zero"], session=session)
        assert "session show" in info.value.hint
        with pytest.raises(InterventionError, match="none is open"):
            build_rows(["manual:values=zero"])
        intervened = build_rows(intervene=["manual:zh=zero + 3.17,5.200=x0.5"], session=session)[1]
        assert intervened == RowInfo("manual:zh=zero + 3.17,5.200=x0.5", "intervene",
                                     (f"#{again}:zh=zero", "3.17,5.200=x0.5"))


def test_grid_rows_with_a_fixed_language_and_modifiers(tmp_path):
    with Session.open("t", tmp_path) as session:
        ref = f"#{add_set(session, 'manual')}"
        _, fixed, modified = build_rows(["manual:zh:values=p90", "manual:values=zero@prompt/a"], session=session)
    # SET:LANG: zh's neurons and zh's statistics in every language's cells (cross-language, as PPXC)
    assert (fixed.key, fixed.specs) == ("manual:zh=p90", (f"{ref}:zh=p90",))
    assert cell_specs(fixed, "hi") == cell_specs(fixed, "zh") == [f"{ref}:zh=p90"]
    assert (modified.key, modified.specs) == ("manual=zero@prompt/a", (f"{ref}:{{lang}}=zero@prompt/a",))
    (spec,) = cell_specs(modified, "hi")
    iv = parse_intervention(spec)
    assert (iv.source, iv.lang, iv.value, iv.positions, iv.site) == (ref, "hi", "zero", "prompt", "a")
    assert parse_grid(" manual:ZH:values=Zero, P90 @last") == ("manual", "zh", ["zero", "p90"], "@last")


def test_random_rows_are_matched_to_each_grid_row(tmp_path):
    with Session.open("t", tmp_path) as session:
        a, b = f"#{add_set(session, 'manual')}", f"#{add_set(session, 'other')}"
        rows = build_rows(["manual:values=zero,p90", "other:hi:values=mean"], random_baseline=2, session=session)
    random = [r for r in rows if r.kind == "random"]
    assert [r.key for r in rows if r.kind != "random"] == ["none", "manual=zero", "manual=p90", "other:hi=mean"]
    assert [(r.key, r.base, r.seed, r.value, r.set_name) for r in random] == [
        ("random1:manual=zero", "manual=zero", 1, "zero", "manual"), ("random2:manual=zero", "manual=zero", 2, "zero", "manual"),
        ("random1:manual=p90", "manual=p90", 1, "p90", "manual"), ("random2:manual=p90", "manual=p90", 2, "p90", "manual"),
        ("random1:other:hi=mean", "other:hi=mean", 1, "mean", "other"),
        ("random2:other:hi=mean", "other:hi=mean", 2, "mean", "other")]
    assert random[0].specs == ("random1:{lang}=zero",) and random[4].specs == ("random1:hi=mean",)
    assert [random_reference(r, rows) for r in random] == [a, a, a, a, b, b]


@pytest.mark.parametrize(("grids", "intervene", "fragment"), [
    (["manual:values=zero,zero"], [], "repeats a value"),
    (["manual:values=zero", "manual:values=p90,zero"], [], "rows repeat: manual=zero"),
    (["manual:zh:values=zero"], ["manual:zh=zero"], "rows repeat: manual:zh=zero"),
    (["manual:values="], [], "bad --grid"),
    (["manual:values=,"], [], "names no values"),
    (["manual:values=p91,p3"], [], "p91, p3 are not grid values"),
    (["manual:xx:values=zero"], [], "unknown language code 'xx'"),
])
def test_duplicate_or_malformed_rows_are_refused(tmp_path, grids, intervene, fragment):
    with Session.open("t", tmp_path) as session:
        add_set(session, "manual")
        with pytest.raises(Exception) as info:
            rows = build_rows(grids, intervene, session=session)
            EvalSpec(task="xnli", langs=["zh"], rows=[r.to_json() for r in rows])
    assert fragment in info.value.message and info.value.hint


def test_an_evaluation_spec_round_trips_and_its_first_row_is_none():
    spec = EvalSpec(task="mkqa", langs=["en", "zh"], rows=[RowInfo("none", "none").to_json()], limit=5, seed=3)
    assert EvalSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(EvalSpecError, match="first row must be the un-intervened"):
        EvalSpec(task="xnli", langs=["en"], rows=[RowInfo("x=zero", "grid", ("1.2=zero",)).to_json()])
    with pytest.raises(EvalSpecError, match="batch-size must be between"):
        EvalSpec(task="xnli", langs=["en"], rows=[RowInfo("none", "none").to_json()], batch_size=0)


# -- eval show formats -------------------------------------------------------------------------------

def stored_evaluation(sessions):
    """An xnli evaluation in zh and hi with hand-made per-sample results: 'none' right on 3 of 4,
    the grid row on 1 of 4, its random baseline on 2 of 4."""
    with Session.open("t", sessions, create=False) as session:
        rows = build_rows(["manual:values=zero"], random_baseline=1, session=session)
        spec = EvalSpec(task="xnli", langs=["zh", "hi"], rows=[r.to_json() for r in rows], seed=1)
        evaluation = session.add_eval("shown", spec.to_json(), {})
        right = {"none": [1, 1, 1, 0], "manual=zero": [0, 1, 0, 0], "random1:manual=zero": [1, 0, 1, 0]}
        session.put_samples(evaluation.id, [
            {"lang": lang, "row": row, "sample": i, "example_id": str(i), "prediction": "entailment",
             "values": {"accuracy": float(ok)}, "extra": {}}
            for lang in ("zh", "hi") for row, marks in right.items() for i, ok in enumerate(marks)])
        session.set_eval(evaluation.id, finished=now())
    return right


def test_eval_show_json_has_each_cell_with_its_score_ci_count_and_delta(capsys, sessions):
    right = stored_evaluation(sessions)
    code, out, err = run(capsys, "eval", "show", *where(sessions), "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["name"], shown["task"], shown["langs"]) == ("shown", "xnli", ["zh", "hi"]) and shown["finished"]
    assert [r["key"] for r in shown["rows"]] == ["none", "manual=zero", "random1:manual=zero"]
    cells = {(c["lang"], c["row"]): c for c in shown["cells"]}
    assert set(cells) == {(lang, row) for lang in ("zh", "hi")
                          for row in ["none", "manual=zero", "random1:manual=zero", "random:manual=zero"]}
    for (lang, row), c in cells.items():
        marks = right[row.replace("random:", "random1:")]
        assert c["score"] == pytest.approx(sum(marks) / 4) and c["n"] == 4 and c["metric"] == "accuracy"
        assert 0 <= c["low"] <= c["score"] <= c["high"] <= 1
        if row == "none":
            assert c["delta"] is None and c["kind"] == "none"
        else:
            assert c["delta"] == pytest.approx(c["score"] - 0.75) and c["delta_low"] <= c["delta"] <= c["delta_high"]
    assert cells["zh", "random:manual=zero"]["kind"] == "random" and cells["zh", "random:manual=zero"]["extra"]["seeds"] == 1


def test_eval_show_text_csv_markdown_latex_and_png(capsys, sessions, tmp_path):
    stored_evaluation(sessions)
    base = ["eval", "show", *where(sessions), "--name", "shown"]
    code, out, _ = run(capsys, *base)
    assert code == 0 and out.startswith("evaluation shown: xnli, 24 scored samples, finished\n")
    assert "zero" in out and "random (zero)" in out and "75.0 ±" in out and "Δ-50.0" in out
    code, out, _ = run(capsys, *base, "--csv")
    lines = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(lines) == 8 and tuple(lines[0])[:len(CSV_FIELDS)] == CSV_FIELDS
    by = {(line["lang"], line["row"]): line for line in lines}
    assert float(by["hi", "manual=zero"]["score"]) == 0.25 and float(by["hi", "manual=zero"]["delta"]) == -0.5
    assert by["zh", "none"]["delta"] == "" and int(by["zh", "none"]["n"]) == 4
    code, out, _ = run(capsys, *base, "--markdown")
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert code == 0 and table[0].startswith("| lang |") and set(table[1]) <= set("|:-") and len(table) == 4
    code, out, _ = run(capsys, *base, "--latex")
    assert code == 0 and r"\begin{tabular}" in out and r"\bottomrule" in out and "$75.0 \\pm" in out
    pytest.importorskip("matplotlib")
    png = tmp_path / "heat.png"
    code, out, _ = run(capsys, *base, "--png", png, "--json")
    assert code == 0 and json.loads(out)["name"] == "shown"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- resuming an evaluation job ----------------------------------------------------------------------

def jobs_cli(sessions, *argv):
    return subprocess.Popen([sys.executable, "-m", "lsn_explorer.cli", "jobs", *map(str, argv), *map(str, where(sessions))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_cancelled_eval_job_resumed_twice_at_once_starts_one_worker(capsys, sessions):
    with Session.open("t", sessions, create=False) as session:
        lane = try_lock(lane_path(session.folder))  # the model lane is busy: the job waits, queued
    assert lane is not None
    try:
        code, out, err = run(capsys, "eval", "run", *where(sessions), "--task", "ppl", "--langs", "zh", "--limit", "2",
                             "--name", "j", "--detach")
        assert code == 0, err
        job_id = int(out.strip().splitlines()[-1])
        code, out, err = run(capsys, "jobs", "cancel", job_id, *where(sessions))
        assert code == 0, err
        code, out, _ = run(capsys, "jobs", "wait", job_id, *where(sessions), "--timeout", "60", "--json")
        assert code == 1 and json.loads(out)["state"] == "cancelled"

        # Two `jobs resume` at once (two terminals): exactly one starts a worker.
        first, second = jobs_cli(sessions, "resume", job_id), jobs_cli(sessions, "resume", job_id)
        outcomes = sorted([(p.wait(timeout=60), *p.communicate()) for p in (first, second)])
        (ok, ok_out, _), (refused, _, refusal) = outcomes
        assert (ok, refused) == (0, 2) and f"job {job_id}: resumed" in ok_out, outcomes
        assert_error(refused, refusal, f"job {job_id} is already")
        code, _, err = run(capsys, "jobs", "resume", job_id, *where(sessions))  # a third, while it waits
        assert_error(code, err, f"job {job_id} is already queued", f"jobs wait {job_id}")
    finally:
        os.close(lane)
    code, out, err = run(capsys, "jobs", "wait", job_id, *where(sessions), "--timeout", "120", "--json")
    assert code == 0 and json.loads(out)["state"] == "finished", out + err
    code, _, err = run(capsys, "jobs", "resume", job_id, *where(sessions))  # and once it has finished
    assert_error(code, err, f"job {job_id} has already finished", "jobs show")
    code, out, _ = run(capsys, "eval", "show", *where(sessions), "--name", "j", "--json")
    shown = json.loads(out)
    assert shown["finished"] and [(c["row"], c["n"]) for c in shown["cells"]] == [("none", 2)]
    with Session.open("t", sessions, create=False) as session:
        assert len(session.samples(session.eval_named("j").id)) == 2 and len(session.jobs()) == 1
