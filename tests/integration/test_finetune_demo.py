"""Masked-LoRA fine-tuning on the demo model (issue 14), and a detached fine-tune killed and resumed.

- Learning: causal-LM fine-tuning on Chinese text of only zh's LAPE neurons (30 steps, the spec's
  demo defaults) lowers zh's held-out perplexity. The change on the other languages is measured
  and printed (run with -s), not asserted: how concentrated it is, is a finding, not a contract.
- Mondal et al.'s Table 3 in shape (slow): each setup (source en, target zh, both, random, none)
  fine-tuned on zh text, held-out perplexity per language, printed.
- Resume (slow): a detached fine-tune killed with SIGKILL after a checkpoint and resumed with
  `jobs resume` ends after the same number of optimizer steps, its final loss equal to an
  uninterrupted run with the same seed.

The session-wide `demo` handle is only read (statistics, perplexity before): a fine-tune adds
LoRA to the model it is given, so each one gets its own freshly loaded demo model.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import torch
from workers import reap_workers

from lsn_explorer import cli
from lsn_explorer.core.data.corpora import corpus_file
from lsn_explorer.core.finetune.config import FinetuneSpec, setup_neurons
from lsn_explorer.core.finetune.train import finetune
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.neurons.runs import identify
from lsn_explorer.core.stats.runs import StatsSettings, compute_stats
from lsn_explorer.core.tasks.perplexity import grouped_perplexity, heldout_lines
from lsn_explorer.jobs import control
from lsn_explorer.session.store import Session

LANGS = ("zh", "ja", "hi", "ko", "en", "fr")  # zh and ja share Han characters; the rest do not
TARGET = "zh"
TOKENS = 3000  # statistics per language: enough for LAPE sets with top rate 0.05
BINS = 256  # the grid's minimum: LAPE reads activation probabilities only, fine histograms cost setup time


@pytest.fixture(scope="module")
def session(demo, tmp_path_factory):
    s = Session.open("finetune", tmp_path_factory.mktemp("sessions"))
    compute_stats(s, demo, {lang: corpus_file(lang) for lang in LANGS}, StatsSettings(max_tokens=TOKENS, bins=BINS))
    identify(s, "lape", params={"top_rate": 0.05})
    yield s
    s.close()


@pytest.fixture(scope="module")
def heldout(demo):
    lines = {lang: heldout_lines(lang) for lang in LANGS}
    return lines, {lang: p.value for lang, p in grouped_perplexity(demo, lines).items()}


def tuned_perplexity(session, lines, spec):
    handle = load_model(device="cpu")
    result = finetune(session, handle, spec)
    return result, {lang: p.value for lang, p in grouped_perplexity(handle, lines).items()}


def table(rows, base):
    head = f"{'setup':<22}" + "".join(f"{lang:>16}" for lang in LANGS)
    lines = [head, f"{'base PPL':<22}" + "".join(f"{base[lang]:>16.2f}" for lang in LANGS)]
    for name, after in rows:
        lines.append(f"{name:<22}" + "".join(f"{after[l]:>8.2f} ({(after[l] - base[l]) / base[l]:+.1%})" for l in LANGS))
    return "\n".join(lines)


def test_target_language_neurons_lower_its_held_out_perplexity(session, heldout):
    lines, base = heldout
    spec = FinetuneSpec(task="lm", train_lang=TARGET, neurons=f"lape:{TARGET}", max_steps=30, name="zh-lape")
    result, after = tuned_perplexity(session, lines, spec)
    print(f"\nlm fine-tune on {TARGET} text, LAPE {TARGET} neurons, {result.steps} steps, loss "
          f"{result.losses[0][1]:.3f} → {result.final_loss:.3f}\n" + table([("target (lape:zh)", after)], base))
    assert result.steps == 30 and result.final_loss < result.losses[0][1]
    assert after[TARGET] < base[TARGET]


@pytest.mark.slow
def test_mondal_setups_on_the_demo_model(session, heldout):
    lines, base = heldout
    rows = []
    for setup in ("source", "target", "both", "random", "none"):
        neurons = setup_neurons(setup, "lape", "en", TARGET)
        attention = ["q", "k", "v", "o"] if setup == "none" else []
        spec = FinetuneSpec(task="lm", train_lang=TARGET, neurons=neurons, attention=attention, max_steps=30,
                            name=f"zh-{setup}")
        rows.append((f"{setup} ({neurons})", tuned_perplexity(session, lines, spec)[1]))
    print("\nheld-out PPL after 30 steps of lm fine-tuning on zh text (change vs base):\n" + table(rows, base))
    assert all(after[TARGET] < base[TARGET] for name, after in rows if not name.startswith("source"))


@pytest.mark.slow
def test_a_killed_detached_finetune_resumes_to_the_same_steps_and_loss(capsys, tmp_path, tiny_checkpoints):
    from lsn_explorer.core.neurons.neuron_set import NeuronSet

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "en.txt").write_text("\n".join(["the cat sleeps in the sun.", "we walk to the river.",
                                              "a dog runs fast.", "rain falls at night."] * 8) + "\n", encoding="utf-8")
    for name in ("t", "ref"):
        with Session.open(name, tmp_path / "sessions") as s:
            neurons = NeuronSet("manual", {}, 2, 48, {"en": [[0, 4], [1, 9], [1, 30]]})
            s.add("neuron_set", "lape", {"set": neurons.to_json()}, {})
    flags = ["--train-data", corpus, "--train-lang", "en", "--neurons", "lape:en", "--attention", "q,v", "--batch", "2",
             "--max-steps", "400", "--checkpoint-every", "10", "--lr", "0.01"]
    where = ["--sessions-dir", tmp_path / "sessions", "--session", "t"]
    code = cli.main([str(a) for a in ["finetune", "--model", tiny_checkpoints["llama"], *where, *flags, "--detach"]])
    out, err = capsys.readouterr()
    assert code == 0, err
    job_id = int(out.strip().splitlines()[-1])
    with Session.open("t", tmp_path / "sessions", create=False) as s:
        deadline = time.monotonic() + 120
        while (job := control.status(s, job_id)).progress.get("units_done", 0) < 15:
            assert job.state in control.ACTIVE and time.monotonic() < deadline, job
            time.sleep(0.02)
        os.killpg(job.pid, signal.SIGKILL)  # after the checkpoint of step 10, before the end
        deadline = time.monotonic() + 30
        while control.status(s, job_id).state != "interrupted":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert s.records("adapter") == []  # nothing listed before the run finishes
        control.resume(s, job_id)
        job = control.wait(s, job_id, timeout=300)
        assert job.state == "finished", (job.error, control.tail(s, job_id))
        (record,) = s.records("adapter")
        log = "\n".join(control.tail(s, job_id, 100))
    curve = job.progress["losses"]
    assert record.payload["steps"] == 400 and [s for s, _ in curve] == list(range(1, 401))  # the whole curve
    resumed = re.search(r"resumed from step (\d+)", log)
    assert resumed and 0 < int(resumed[1]) < 400 and int(resumed[1]) % 10 == 0, log  # a checkpoint, not the start

    with Session.open("ref", tmp_path / "sessions") as ref:  # its set is record #1 too, as the job pinned it
        spec = FinetuneSpec.from_json(record.payload["spec"])
        uninterrupted = finetune(ref, load_model(tiny_checkpoints["llama"], device="cpu"), spec)
    assert uninterrupted.steps == 400
    assert record.payload["final_loss"] == pytest.approx(uninterrupted.final_loss, abs=1e-4)
    torch.testing.assert_close(torch.tensor(record.payload["losses"]), torch.tensor(uninterrupted.losses),
                               atol=1e-4, rtol=0)


@pytest.fixture(autouse=True)
def no_worker_left_running():
    """Every worker a test started has ended when the test does."""
    yield
    reap_workers()
