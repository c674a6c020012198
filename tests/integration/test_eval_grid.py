"""`lsn-explorer eval run|show` on the demo model (issue 13 §2).

- Grid cells equal an independent computation: every sample scored again one at a time, unpadded,
  through plain PyTorch hooks (tests/intervention_reference.py) on the plain HF model, with the
  neurons and values looked up here from the stored set and statistics.
- A detached evaluation killed with SIGKILL and resumed gives exactly the foreground run's table,
  each sample stored once, the store intact.
- A cancelled run keeps its finished batches; running it again equals an uninterrupted run.
- `--adapter` scores the adapted model: equal to peft's merged weights through plain HF.

One session with statistics (zh, hi) and two LAPE sets is prepared per module and copied into each
test's own folder. Reference generation recomputes the whole sequence every step (no KV cache), so
its hooks see every position, as the grid's `all`-position writes require.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import sqlite3
import threading
import time

import pytest
import torch
from intervention_reference import HookedInterventions, RefIntervention
from workers import kill_active_jobs, reap_workers

from lsn_explorer import cli
from lsn_explorer.assets import DEMO_MODEL_DIR
from lsn_explorer.core.data.corpora import corpus_file
from lsn_explorer.core.evals.grid import EvalSpec, build_rows
from lsn_explorer.core.evals.runner import run_eval
from lsn_explorer.core.evals.scorers import load_samples
from lsn_explorer.core.neurons.baseline import random_baseline
from lsn_explorer.core.neurons.runs import identify, load_neuron_set
from lsn_explorer.core.stats.runs import StatsSettings, compute_stats, load_stats
from lsn_explorer.core.tasks import metrics
from lsn_explorer.core.tasks.registry import load_examples
from lsn_explorer.core.tasks.scoring import XNLI_WORDS
from lsn_explorer.core.tasks.xnli import LABELS
from lsn_explorer.errors import Cancelled
from lsn_explorer.session.store import Session

LANGS = ("zh", "hi")
TOKENS = 4000  # statistics per language (site s, consistent), as `stats --tokens 4000`
NEW_TOKENS = 24  # the answer length the scorers generate (core.tasks.scoring.ANSWER_TOKENS)
PROB_TOL = 1e-4  # XNLI label probabilities: batched right-padded forward vs one unpadded sequence


# -- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(demo, tmp_path_factory):
    """A session folder with zh, hi statistics, `lape` (default rate) and `lape5` (top rate 0.05)."""
    root = tmp_path_factory.mktemp("prepared")
    with Session.open("s", root) as session:
        compute_stats(session, demo, {lang: corpus_file(lang) for lang in LANGS}, StatsSettings(max_tokens=TOKENS))
        identify(session, "lape")
        identify(session, "lape", params={"top_rate": 0.05}, name="lape5")
    return root / "s"


@pytest.fixture()
def sessions(prepared, tmp_path):
    shutil.copytree(prepared, tmp_path / "sessions" / "s")
    return tmp_path / "sessions"


@pytest.fixture(autouse=True)
def no_worker_left_running(tmp_path):
    """Detached workers end with their test: waited for, and any still active killed."""
    yield
    kill_active_jobs(tmp_path / "sessions", "s")
    reap_workers()


@pytest.fixture(scope="module")
def plain():
    """The demo checkpoint as a plain HF model (no nnsight, no engine), fp32 on CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lsn_explorer.core.model.architectures import architecture_for

    model = AutoModelForCausalLM.from_pretrained(DEMO_MODEL_DIR, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(DEMO_MODEL_DIR), architecture_for(model.config)


# -- helpers -----------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def where(sessions):
    return ["--sessions-dir", sessions, "--session", "s"]


def evaluate(capsys, sessions, name, *args):
    code, _, err = run(capsys, "eval", "run", *where(sessions), "--name", name, "--json", *args)
    assert code == 0, err
    return shown(capsys, sessions, name)


def shown(capsys, sessions, name):
    code, out, err = run(capsys, "eval", "show", *where(sessions), "--name", name, "--json")
    assert code == 0, err
    return json.loads(out)


def stored(sessions, name):
    """(lang, row, sample) → the stored per-sample result."""
    with Session.open("s", sessions, create=False) as session:
        evaluation = session.eval_named(name)
        return {(r["lang"], r["row"], r["sample"]): r for r in session.samples(evaluation.id)}


def cell(table, lang, row):
    (found,) = [c for c in table["cells"] if c["lang"] == lang and c["row"] == row]
    return found


def until(check, what, timeout=90.0, poll=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def row_count(sessions, name):
    """Per-sample rows stored so far (a plain read-only connection, as a second process would)."""
    db = sqlite3.connect(f"file:{sessions / 's' / 'session.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM eval_samples JOIN evals ON evals.id = eval_samples.eval "
                          "WHERE evals.name = ?", (name,)).fetchone()[0]
    finally:
        db.close()


def integrity(sessions):
    db = sqlite3.connect(sessions / "s" / "session.sqlite")
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def job_state(capsys, sessions, job_id):
    code, out, err = run(capsys, "jobs", "show", job_id, *where(sessions), "--json")
    assert code == 0, err
    return json.loads(out)


# -- the independent reference -----------------------------------------------------------------------

def written(sessions, set_name, neurons_lang, value, stats_lang=None, seed=None):
    """The reference edit of one cell: the set's `neurons_lang` neurons (or a random draw matched
    to the set with `seed`), set to zero or to `stats_lang`'s statistic at site s."""
    with Session.open("s", sessions, create=False) as session:
        neuron_set = load_neuron_set(session, set_name)
        if seed is not None:
            neuron_set = random_baseline(neuron_set, seed=seed)
        pairs = neuron_set.neurons[neurons_lang]
        if value == "zero":
            values = torch.zeros(len(pairs))
        else:
            table = load_stats(session, stats_lang or neurons_lang, site="s", mode="consistent").values[value]
            values = table[pairs[:, 0], pairs[:, 1]].float()
    assert len(pairs) > 0
    return [RefIntervention(pairs, values, None, "s", "all")]


def logprobs(plain, ids, edits):
    model, _, arch = plain
    with torch.no_grad(), HookedInterventions(model, arch, edits):
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)


def ref_xnli(plain, lang, example, edits):
    """Label probabilities from the three verbalised options, each its own unpadded sequence."""
    tok = plain[1]
    right, *words = XNLI_WORDS[lang]
    context = tok(f"{example.premise}, {right}?")["input_ids"]
    loglik = []
    for word in words:
        option = tok(f" {word}, {example.hypothesis}", add_special_tokens=False)["input_ids"]
        lp = logprobs(plain, context + option, edits)
        loglik.append(sum(float(lp[len(context) - 1 + j, t]) for j, t in enumerate(option)))
    probs = torch.softmax(torch.tensor(loglik, dtype=torch.float64), 0).tolist()
    return LABELS[max(range(3), key=loglik.__getitem__)], probs


def ref_answer(plain, prompt, edits):
    """Greedy answer, one unpadded sequence: the prompt pass, then one cached position per step
    (the hooks edit every position they see: all positions), stopped at EOS, first line kept."""
    model, tok, arch = plain
    new, past, step = [], None, torch.tensor([tok(prompt)["input_ids"]])
    with torch.no_grad(), HookedInterventions(model, arch, edits):
        for _ in range(NEW_TOKENS):
            out = model(step, past_key_values=past, use_cache=True)
            token, past = int(out.logits[0, -1].argmax()), out.past_key_values
            if token == tok.eos_token_id:
                break
            new.append(token)
            step = torch.tensor([[token]])
    return tok.decode(new, skip_special_tokens=True).strip().split("\n")[0].strip()


def ref_nll(plain, line, edits):
    ids = plain[1](line)["input_ids"]
    lp = logprobs(plain, ids, edits)
    return -sum(float(lp[t - 1, ids[t]]) for t in range(1, len(ids))), len(ids) - 1


def golds(example):
    return [text for answer in example.answers for text in ([answer.text] if answer.text else []) + list(answer.aliases)]


# -- grid cells vs the reference ---------------------------------------------------------------------

def test_xnli_grid_and_random_rows_equal_plain_hook_reference(capsys, sessions, plain):
    # Two sets, so the random rows of each must be drawn matched to their own set.
    table = evaluate(capsys, sessions, "x", "--task", "xnli", "--langs", "zh", "--grid", "lape:values=p90",
                     "--grid", "lape5:values=zero", "--random-baseline", "1", "--limit", "3", "--batch-size", "3")
    results = stored(sessions, "x")
    examples = load_examples("xnli", "zh")
    rows = {"none": [], "lape=p90": written(sessions, "lape", "zh", "p90"),
            "lape5=zero": written(sessions, "lape5", "zh", "zero"),
            "random1:lape=p90": written(sessions, "lape", "zh", "p90", seed=1),  # seed 1000 · spec seed + k
            "random1:lape5=zero": written(sessions, "lape5", "zh", "zero", seed=1)}
    assert [r["key"] for r in table["rows"]] == list(rows)
    moved = 0.0
    for key, edits in rows.items():
        correct = []
        for sample in range(3):
            label, probs = ref_xnli(plain, "zh", examples[sample], edits)
            got = results[("zh", key, sample)]
            assert got["prediction"] == label, (key, sample)
            assert got["extra"]["probabilities"] == pytest.approx(probs, abs=PROB_TOL), (key, sample)
            assert got["values"]["accuracy"] == float(label == LABELS[examples[sample].label])
            correct.append(label == LABELS[examples[sample].label])
            base = results[("zh", "none", sample)]["extra"]["probabilities"]
            moved = max(moved, max(abs(a - b) for a, b in zip(probs, base)))
        found = cell(table, "zh", key)
        assert found["n"] == 3 and found["score"] == pytest.approx(sum(correct) / 3, abs=1e-12), key
    assert moved > 100 * PROB_TOL  # the interventions change the scores well beyond the tolerance
    for base in ("lape=p90", "lape5=zero"):  # one seed: the aggregated baseline is that seed
        assert cell(table, "zh", f"random:{base}")["score"] == cell(table, "zh", f"random1:{base}")["score"]


def test_mkqa_generation_cells_equal_plain_hook_reference(capsys, sessions, plain):
    table = evaluate(capsys, sessions, "m", "--task", "mkqa", "--langs", "zh", "--grid", "lape:values=zero",
                     "--limit", "3", "--batch-size", "3")
    results = stored(sessions, "m")
    pairs = load_samples("mkqa", "zh", None, "test", 3)  # the first 3 with a short answer
    answers = {}
    for key, edits in {"none": [], "lape=zero": written(sessions, "lape", "zh", "zero")}.items():
        f1s = []
        for sample, example in pairs:
            answer = answers[key, sample] = ref_answer(plain, f"Question: {example.query}\nAnswer:", edits)
            got = results[("zh", key, sample)]
            assert got["prediction"] == answer, (key, sample)
            f1s.append(100 * metrics.mkqa_f1(answer, golds(example), "zh"))
            assert got["values"]["f1"] == pytest.approx(f1s[-1])
        assert cell(table, "zh", key)["score"] == pytest.approx(sum(f1s) / len(f1s)) and cell(table, "zh", key)["n"] == 3
    assert any(answers["none", i] != answers["lape=zero", i] for i, _ in pairs)  # zeroing changes an answer


def test_perplexity_cells_with_a_fixed_language_equal_plain_hook_reference(capsys, sessions, plain):
    # lape:zh: zh's neurons and zh's P90 in both languages' cells (cross-language, as PPXC).
    table = evaluate(capsys, sessions, "p", "--task", "ppl", "--langs", "zh,hi", "--grid", "lape:zh:values=zero,p90",
                     "--limit", "4", "--batch-size", "3")
    results = stored(sessions, "p")
    moved = 0.0
    for lang in LANGS:
        lines = load_samples("ppl", lang, None, "test", 4)
        for key, edits in {"none": [], "lape:zh=zero": written(sessions, "lape", "zh", "zero"),
                           "lape:zh=p90": written(sessions, "lape", "zh", "p90", stats_lang="zh")}.items():
            total_nll = total_tokens = 0
            for sample, line in lines:
                nll, tokens = ref_nll(plain, line, edits)
                got = results[(lang, key, sample)]["values"]
                assert got["nll"] == pytest.approx(nll, rel=1e-3) and got["tokens"] == tokens, (lang, key, sample)
                moved = max(moved, abs(nll - results[(lang, "none", sample)]["values"]["nll"]) / nll)
                total_nll, total_tokens = total_nll + nll, total_tokens + tokens
            found = cell(table, lang, key)
            assert found["score"] == pytest.approx(math.exp(total_nll / total_tokens), rel=1e-3) and found["n"] == 4
    assert moved > 1e-2  # zeroing zh's neurons moves some line's NLL by over 1 %


# -- kill -9 and resume ------------------------------------------------------------------------------



def detach(capsys, sessions, name, *args):
    code, out, err = run(capsys, "eval", "run", *where(sessions), "--name", name, *args, "--detach")
    assert code == 0, err
    return int(out.strip().splitlines()[-1])


def kill_after_progress(capsys, sessions, name, job_id, rng, total, max_delay):
    """Once the worker has stored rows beyond what it had, wait a seeded random delay and SIGKILL
    its process group; returns the rows stored at the kill (None when it finished first)."""
    before = row_count(sessions, name)
    job = until(lambda: (j := job_state(capsys, sessions, job_id))["state"] != "queued" and j, "the worker to run")
    until(lambda: row_count(sessions, name) > before or job_state(capsys, sessions, job_id)["state"] == "finished",
          "new batches to be stored")
    time.sleep(rng.uniform(0, max_delay))
    if job_state(capsys, sessions, job_id)["state"] == "finished":
        return None
    try:
        os.killpg(job["pid"], signal.SIGKILL)
    except ProcessLookupError:
        return None
    until(lambda: job_state(capsys, sessions, job_id)["state"] in ("interrupted", "finished"), "the kill to show")
    at = row_count(sessions, name)
    return at if at < total else None


def resume(capsys, sessions, job_id):
    code, out, err = run(capsys, "jobs", "resume", job_id, *where(sessions))
    assert code == 0 and f"job {job_id}: resumed" in out, err


def assert_same_evaluation(capsys, sessions, name, reference, langs, rows, n):
    table, expected = shown(capsys, sessions, reference), shown(capsys, sessions, name)
    assert expected["finished"] and table["finished"]
    assert expected["cells"] == table["cells"] and expected["rows"] == table["rows"]
    got, want = stored(sessions, name), stored(sessions, reference)
    assert got == want
    counts = {}
    for lang, row, _ in got:
        counts[(lang, row)] = counts.get((lang, row), 0) + 1
    assert counts == {(lang, row): n for lang in langs for row in rows}  # none missing, none twice
    assert integrity(sessions) == "ok"


def test_detached_eval_killed_once_and_resumed_equals_foreground(capsys, sessions):
    args = ["--task", "ppl", "--langs", "zh,hi", "--grid", "lape:values=zero", "--limit", "6", "--batch-size", "2"]
    evaluate(capsys, sessions, "fg", *args)
    job_id = detach(capsys, sessions, "bg", *args)  # 12 units: 2 languages × 2 rows × 3 batches
    total = 2 * 2 * 6
    at = kill_after_progress(capsys, sessions, "bg", job_id, random.Random(13), total, max_delay=0.05)
    assert at is not None and 0 < at < total, at  # killed in the middle of the work
    assert job_state(capsys, sessions, job_id)["state"] == "interrupted"
    assert integrity(sessions) == "ok"
    resume(capsys, sessions, job_id)
    code, out, err = run(capsys, "jobs", "wait", job_id, *where(sessions), "--timeout", "120", "--json")
    assert code == 0 and json.loads(out)["state"] == "finished", out + err
    assert_same_evaluation(capsys, sessions, "bg", "fg", LANGS, ["none", "lape=zero"], 6)


@pytest.mark.slow
def test_detached_eval_killed_five_times_at_random_and_resumed_equals_foreground(capsys, sessions):
    args = ["--task", "xnli", "--langs", "zh,hi", "--grid", "lape:values=zero,p90", "--random-baseline", "1",
            "--limit", "16", "--batch-size", "2"]
    evaluate(capsys, sessions, "fg", *args)
    rows = ["none", "lape=zero", "lape=p90", "random1:lape=zero", "random1:lape=p90"]
    total = 2 * len(rows) * 16
    job_id = detach(capsys, sessions, "bg", *args)
    rng = random.Random(2024)
    kills = []
    for attempt in range(5):
        at = kill_after_progress(capsys, sessions, "bg", job_id, rng, total, max_delay=0.6)
        if at is None:
            break
        kills.append(at)
        assert integrity(sessions) == "ok"
        resume(capsys, sessions, job_id)
    assert len(kills) == 5 and all(a < b for a, b in zip(kills, kills[1:])), kills  # each after new batches
    code, out, err = run(capsys, "jobs", "wait", job_id, *where(sessions), "--timeout", "300", "--json")
    assert code == 0 and json.loads(out)["state"] == "finished", out + err
    assert_same_evaluation(capsys, sessions, "bg", "fg", LANGS, rows, 16)


# -- cancel (Ctrl+C) ---------------------------------------------------------------------------------

def test_cancel_after_batches_keeps_them_and_running_again_equals_an_uninterrupted_run(demo, sessions):
    with Session.open("s", sessions, create=False) as session:
        rows = build_rows(["lape:values=zero"], session=session)
        spec = EvalSpec(task="ppl", langs=["zh", "hi"], rows=[r.to_json() for r in rows], limit=3, batch_size=2)
        stopped, whole = session.add_eval("stopped", spec.to_json(), {}), session.add_eval("whole", spec.to_json(), {})
        cancel, seen = threading.Event(), []

        def on_batch(lang, row, first):
            seen.append((lang, row, first))
            if len(seen) == 4:
                cancel.set()

        with pytest.raises(Cancelled):
            run_eval(session, demo, stopped, cancel=cancel, on_batch=on_batch)
        kept = session.samples(stopped.id)
        # zh: none and lape=zero (2 batches each: 2 + 1 samples), then hi's none and lape=zero are left
        assert len(seen) == 4 and len(kept) == 6 and session.eval_named("stopped").finished is None
        summary = run_eval(session, demo, stopped)
        assert "6 samples scored, 6 already stored" in summary, summary
        run_eval(session, demo, whole)
        again = session.samples(stopped.id)
        assert all(r in again for r in kept)  # the kept batches were not scored again
        assert again == session.samples(whole.id) and len(again) == 2 * 2 * 3
        assert session.eval_named("stopped").finished is not None


def test_ctrl_c_in_eval_run_stops_after_the_batch_and_the_same_command_continues(capsys, sessions, monkeypatch):
    from lsn_explorer.core.evals import runner

    original, batches = runner.run_eval, []

    def interrupted(*args, **kwargs):  # Ctrl+C arrives while the third batch is stored
        def on_batch(*batch):
            batches.append(batch)
            if len(batches) == 3:
                os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs, on_batch=on_batch)

    monkeypatch.setattr(runner, "run_eval", interrupted)
    args = ["eval", "run", *where(sessions), "--task", "ppl", "--langs", "zh", "--limit", "5", "--batch-size", "1",
            "--name", "c"]
    code, out, err = run(capsys, *args)
    assert code == 2 and "error: evaluation 'c' stopped; 3 scored samples are kept" in err and "--name c" in err, err
    assert "Traceback" not in err and len(stored(sessions, "c")) == 3
    monkeypatch.setattr(runner, "run_eval", original)
    code, out, err = run(capsys, *args, "--json")
    assert code == 0 and "2 samples scored, 3 already stored" in err, err
    assert json.loads(out)["cells"][0]["n"] == 5


# -- adapters ----------------------------------------------------------------------------------------

def test_adapter_results_differ_and_equal_peft_merged_weights(capsys, sessions, plain):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = sessions / "s" / "adapters" / "tuned"
    base = AutoModelForCausalLM.from_pretrained(DEMO_MODEL_DIR, dtype=torch.float32)
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["gate_proj", "up_proj", "down_proj"]))
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, weight in lora.named_parameters():
            if "lora_B" in name:  # peft starts B at zero (an identity adapter); make it do something
                weight.copy_(0.05 * torch.randn(weight.shape, generator=generator))
    lora.save_pretrained(folder)
    with Session.open("s", sessions, create=False) as session:
        session.add("adapter", "tuned", {"folder": "adapters/tuned"}, {})
    args = ["--task", "xnli", "--langs", "zh", "--grid", "lape:values=zero", "--limit", "3", "--batch-size", "3"]
    evaluate(capsys, sessions, "without", *args)
    table = evaluate(capsys, sessions, "with", *args, "--adapter", "tuned")
    without, with_ = stored(sessions, "without"), stored(sessions, "with")
    assert with_.keys() == without.keys()
    assert max(abs(a - b) for k in with_ for a, b in zip(with_[k]["extra"]["probabilities"],
                                                         without[k]["extra"]["probabilities"])) > 0.01

    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(DEMO_MODEL_DIR, dtype=torch.float32),
                                       str(folder)).merge_and_unload().eval()
    reference = (merged, plain[1], plain[2])
    examples = load_examples("xnli", "zh")
    for key, edits in {"none": [], "lape=zero": written(sessions, "lape", "zh", "zero")}.items():
        for sample in range(3):
            label, probs = ref_xnli(reference, "zh", examples[sample], edits)
            got = with_[("zh", key, sample)]
            assert got["prediction"] == label and got["extra"]["probabilities"] == pytest.approx(probs, abs=PROB_TOL)
        assert cell(table, "zh", key)["n"] == 3
