"""torchrun on CPU (gloo): statistics and evaluations split over 2 processes equal one process, and a
rank killed mid-run fails the whole run and records nothing of the language in progress (languages
finished before are whole, as in one process), and the same command then completes.

torchrun runs each rank with one thread (OMP_NUM_THREADS=1), and a matrix product on one thread
sums in another order than on two; the single-process runs here use one thread too, so the
comparison is of the distribution itself: bit for bit, artifacts compared by content hash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from tiny import write_parallel_corpus

from lsn_explorer.session.store import Session

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
ONE_THREAD = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture()
def corpus(tmp_path):
    return write_parallel_corpus(tmp_path / "corpus")


def lsn(*argv, ranks=False, check=True):
    """The command as one process, or under torchrun with 2 ranks."""
    command = [*TORCHRUN, "-m", "lsn_explorer"] if ranks else [sys.executable, "-m", "lsn_explorer"]
    done = subprocess.run([*command, *map(str, argv)], capture_output=True, text=True, env=ONE_THREAD, timeout=600)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def stats_hashes(sessions, name):
    with Session.open(name, sessions, create=False) as session:
        return {r.name: (r.payload["artifact"], r.payload["tokens"]) for r in session.records("stats")}


def neurons(sessions, name):
    with Session.open(name, sessions, create=False) as session:
        (record,) = session.records("neuron_set")
        return record.payload["set"]["neurons"]


@pytest.mark.parametrize("model", ["tiny", "demo"])
def test_two_ranks_give_the_statistics_and_lape_set_of_one_process(tmp_path, tiny_checkpoints, corpus, model):
    sessions = tmp_path / "sessions"
    flags = (["--model", tiny_checkpoints["llama"], "--corpus", corpus, "--langs", "en,fr,es", "--window", "8",
              "--batch-size", "2"] if model == "tiny" else ["--langs", "en,zh,hi", "--tokens", "3000", "--batch-size", "2"])
    for name, ranks in (("one", False), ("two", True)):
        lsn("stats", "--sessions-dir", sessions, "--session", name, *flags, ranks=ranks)
        lsn("identify", "--sessions-dir", sessions, "--session", name, "--method", "lape", "--top-rate", "0.05")
    one, two = stats_hashes(sessions, "one"), stats_hashes(sessions, "two")
    assert one == two and len(one) == 3
    with Session.open("two", sessions, create=False) as session:
        assert all(r.payload["ranks"] == 2 for r in session.records("stats"))
    assert neurons(sessions, "one") == neurons(sessions, "two")


def test_two_ranks_score_an_evaluation_as_one_process(tmp_path, tiny_checkpoints):
    sessions = tmp_path / "sessions"
    flags = ["--model", tiny_checkpoints["llama"], "--task", "ppl", "--langs", "en,fr", "--limit", "9",
             "--batch-size", "2", "--intervene", "0.5,1.7,1.30=zero", "--name", "e", "--json"]
    tables = {}
    for name, ranks in (("one", False), ("two", True)):
        tables[name] = json.loads(lsn("eval", "run", "--sessions-dir", sessions, "--session", name, *flags,
                                      ranks=ranks).stdout)
    samples = {}
    for name in ("one", "two"):
        with Session.open(name, sessions, create=False) as session:
            (evaluation,) = session.evals()
            samples[name] = sorted(json.dumps(s, sort_keys=True) for s in session.samples(evaluation.id))
            assert evaluation.finished
    assert samples["one"] == samples["two"] and len(samples["one"]) == 2 * 2 * 9  # langs × rows × samples
    assert tables["one"]["cells"] == tables["two"]["cells"]


def test_a_killed_rank_fails_the_run_records_nothing_partial_and_a_rerun_completes(tmp_path, tiny_checkpoints):
    sessions = tmp_path / "sessions"
    corpus = write_parallel_corpus(tmp_path / "long", repeat=60)  # ~5,000 tokens a language, in 8-token batches
    flags = ["stats", "--sessions-dir", sessions, "--model", tiny_checkpoints["llama"], "--corpus", corpus,
             "--langs", "en,fr,es", "--window", "8", "--batch-size", "1"]
    run = subprocess.Popen([*TORCHRUN, "-m", "lsn_explorer", *map(str, flags), "--session", "two"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ONE_THREAD)
    try:
        rank1 = None
        deadline = time.monotonic() + 120
        while rank1 is None:
            assert run.poll() is None and time.monotonic() < deadline, "the ranks did not start"
            for child in psutil.Process(run.pid).children(recursive=True):
                try:
                    if child.environ().get("RANK") == "1" and "lsn_explorer" in " ".join(child.cmdline()):
                        rank1 = child
                except psutil.Error:
                    continue
            time.sleep(0.1)
        # Killed once its model is loaded and it is collecting (the session is open by then).
        while not (sessions / "two" / "session.sqlite").is_file():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)
        os.kill(rank1.pid, signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    assert "exitcode  : -9" in err or "another rank of this 2-process run stopped" in err, err[-3000:]
    with Session.open("two", sessions, create=False) as session:
        assert session.records("stats_shard") == []
        assert session._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    before = stats_hashes(sessions, "two")  # languages the ranks finished before the kill, if any
    assert len(before) < 3, "the run finished before the kill: give it more work"
    lsn(*flags, "--session", "two", ranks=True)
    lsn(*flags, "--session", "one")
    after = stats_hashes(sessions, "two")
    assert after == stats_hashes(sessions, "one") and len(after) == 3
    # What was recorded before the kill was whole (the same as an uninterrupted run's) and kept.
    assert all(after[lang] == value for lang, value in before.items())


def test_distributed_runs_refuse_what_they_cannot_do(tmp_path, tiny_checkpoints, corpus):
    done = lsn("stats", "--sessions-dir", tmp_path, "--session", "s", "--model", tiny_checkpoints["llama"],
               "--corpus", corpus, "--langs", "en", "--shard", "0/2", ranks=True, check=False)
    assert done.returncode != 0
    assert "error: `stats` under torchrun takes no --shard" in done.stderr
    assert "hint: the 2 processes split the work themselves" in done.stderr
    done = lsn("stats", "--sessions-dir", tmp_path, "--session", "s", "--model", tiny_checkpoints["llama"],
               "--corpus", corpus, "--langs", "en", "--window", "64", "--tokens", "64", ranks=True, check=False)
    assert done.returncode != 0 and "2 processes but only 1 batches" in done.stderr
    assert not Path(tmp_path / "s" / "session.sqlite").exists() or stats_hashes(tmp_path, "s") == {}
