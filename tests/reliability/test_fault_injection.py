"""Fault injection: statistics, evaluation and fine-tune workers killed with SIGKILL at random
points, and several processes writing one session at once.

After every kill the session must pass `lsn-explorer session check` except for the job it names as
interrupted (database intact, every referenced artifact present with its hash, no adapter or
artifact of the unfinished work referenced), and `jobs resume` must finish the work with exactly
what an uninterrupted run stores. The slow test kills 20 workers; the default run a few.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tiny import write_parallel_corpus
from workers import kill_active_jobs, reap_workers

from lsn_explorer import cli
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.jobs import control
from lsn_explorer.session.store import Session


@pytest.fixture()
def corpus(tmp_path):
    return write_parallel_corpus(tmp_path / "corpus")


@pytest.fixture(autouse=True)
def no_worker_left(tmp_path):
    yield
    for name in ("t", "ref"):
        kill_active_jobs(tmp_path / "sessions", name)
    reap_workers()


def cli_run(*argv):
    """Run the CLI in this process (the workers it starts are real processes all the same)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def where(sessions, name="t"):
    return ["--sessions-dir", sessions, "--session", name]


def job_kinds(tiny, corpus, sessions):
    """The argv (without the session) of one job of each kind, each with enough units to be killed
    in the middle: statistics over 3 languages, an evaluation of 2 × 40 lines, a 300-step fine-tune."""
    return {
        "stats": ["stats", "--model", tiny, "--langs", "en,fr,es", "--corpus", corpus, "--window", "8",
                  "--batch-size", "1"],
        "eval": ["eval", "run", "--model", tiny, "--task", "ppl", "--langs", "en,fr", "--limit", "40",
                 "--batch-size", "1", "--name", "e"],
        "finetune": ["finetune", "run", "--model", tiny, "--train-data", corpus, "--train-lang", "en",
                     "--neurons", "lape:en", "--batch", "2", "--max-steps", "300", "--checkpoint-every", "10",
                     "--lr", "0.01"],
    }


def prepare(sessions, name):
    with Session.open(name, sessions) as session:  # the fine-tune's neurons (a tiny model: 2 × 48)
        neurons = NeuronSet("manual", {}, 2, 48, {"en": [[0, 4], [1, 9], [1, 30]]})
        session.add("neuron_set", "lape", {"set": neurons.to_json()}, {})


def start(argv, sessions):
    code, out, err = cli_run(*argv, *where(sessions), "--detach")
    assert code == 0, err
    return int(out.strip().splitlines()[-1])


def state(sessions, job_id):
    with Session.open("t", sessions, create=False) as session:
        return control.status(session, job_id)


def kill_at_random(sessions, job_id, rng, max_delay):
    """Once the worker runs, wait a random delay and SIGKILL its process group. Returns False when
    the job finished first."""
    deadline = time.monotonic() + 120
    while (job := state(sessions, job_id)).state != "running" or not job.pid:
        assert job.state in control.ACTIVE, job
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.02)
    time.sleep(rng.uniform(0, max_delay))
    if state(sessions, job_id).state != "running":
        return False
    try:
        os.killpg(job.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 30
    while (after := state(sessions, job_id).state) not in ("interrupted", "finished"):
        assert time.monotonic() < deadline, after
        time.sleep(0.05)
    return after == "interrupted"


def problems(sessions):
    """The problems `session check` finds, as (area, message)."""
    code, out, err = cli_run("session", "check", "t", "--sessions-dir", sessions, "--json")
    report = json.loads(out)
    assert code == (0 if report["ok"] else 1), err
    return [(f["area"], f["message"]) for f in report["findings"] if f["problem"]]


def outcome(sessions, name, kind):
    """What the finished work stored: artifact hashes per language (stats), per-sample rows (eval),
    the adapter's folder hash and losses (fine-tune)."""
    with Session.open(name, sessions, create=False) as session:
        if kind == "stats":
            return sorted((r.name, r.payload["artifact"]) for r in session.records("stats"))
        if kind == "eval":
            (stored,) = session.evals()
            return sorted(json.dumps(sample, sort_keys=True) for sample in session.samples(stored.id))
        (adapter,) = session.records("adapter")
        return adapter.payload["steps"], adapter.payload["losses"]


def kill_and_resume(sessions, argv, kind, rng, kills, max_delay):
    """Start the job, kill it `kills` times at random points (checking the session after each),
    resume it each time, and wait for it to finish; returns how many kills landed."""
    job_id = start(argv, sessions)
    landed = 0
    for _ in range(kills):
        if not kill_at_random(sessions, job_id, rng, max_delay):
            break
        landed += 1
        found = problems(sessions)
        assert found and all(area == "job" for area, _ in found), found  # only the interrupted job
        if kind == "finetune":
            with Session.open("t", sessions, create=False) as session:
                assert session.records("adapter") == []  # nothing listed before the run finishes
        code, out, err = cli_run("jobs", "resume", job_id, *where(sessions))
        assert code == 0, err
    code, out, err = cli_run("jobs", "wait", job_id, *where(sessions), "--timeout", "300", "--json")
    assert code == 0 and json.loads(out)["state"] == "finished", out + err
    assert problems(sessions) == []
    return landed


def reference(sessions, argv, kind):
    """The same work run in the foreground, uninterrupted, in session `ref`."""
    prepare(sessions, "ref")
    code, out, err = cli_run(*argv, *where(sessions, "ref"))
    assert code == 0, err
    return outcome(sessions, "ref", kind)


# Statistics killed once and resumed is also in tests/unit/test_jobs.py; twice is in the slow run.
@pytest.mark.parametrize("kind", [pytest.param("stats", marks=pytest.mark.slow), "eval"])
def test_a_job_killed_at_random_twice_resumes_to_the_uninterrupted_result(tmp_path, tiny_checkpoints, corpus, kind):
    sessions = tmp_path / "sessions"
    prepare(sessions, "t")
    argv = job_kinds(tiny_checkpoints["llama"], corpus, sessions)[kind]
    landed = kill_and_resume(sessions, argv, kind, random.Random(len(kind)), kills=2, max_delay=0.4)
    assert landed >= 1
    assert outcome(sessions, "t", kind) == reference(sessions, argv, kind)


@pytest.mark.slow
def test_twenty_workers_killed_at_random_points_lose_nothing(tmp_path, tiny_checkpoints, corpus):
    sessions = tmp_path / "sessions"
    rng = random.Random(2026)
    landed = {}
    for kind, kills, max_delay in (("stats", 7, 0.5), ("eval", 7, 0.5), ("finetune", 6, 1.5)):
        for name in ("t", "ref"):
            if (sessions / name).exists():
                import shutil

                shutil.rmtree(sessions / name)
        prepare(sessions, "t")
        argv = job_kinds(tiny_checkpoints["llama"], corpus, sessions)[kind]
        landed[kind] = kill_and_resume(sessions, argv, kind, rng, kills, max_delay)
        expected = reference(sessions, argv, kind)
        got = outcome(sessions, "t", kind)
        if kind == "finetune":  # a resumed fine-tune replays from its checkpoint: the same steps and losses
            assert got[0] == expected[0] and [step for step, _ in got[1]] == [step for step, _ in expected[1]]
            assert [loss for _, loss in got[1]] == pytest.approx([loss for _, loss in expected[1]], abs=1e-4)
        else:
            assert got == expected
    print(f"kills that landed: {landed}")
    assert sum(landed.values()) >= 20, landed


WRITER = textwrap.dedent("""
    import sys, time
    from lsn_explorer.session.store import Session
    root, seconds = sys.argv[1], float(sys.argv[2])
    written, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        with Session.open("t", root) as session:  # open per write, as the app's workers do
            session.add("generation", f"w{written}", {"text": "x" * 200}, {})
            session.log(f"writer {written}")
        written += 1
    print(written)
""")


def test_the_app_and_two_jobs_write_one_session_at_once(tmp_path, tiny_checkpoints, corpus):
    """Two writer processes standing in for the app's workers add records as fast as they can
    while a statistics job and an evaluation job run and queue on the session: nobody sees
    `database is locked`, and every record each of them wrote is there."""
    sessions = tmp_path / "sessions"
    prepare(sessions, "t")
    kinds = job_kinds(tiny_checkpoints["llama"], corpus, sessions)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(sessions), "8"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    jobs = [start(kinds["stats"], sessions), start(kinds["eval"], sessions)]
    counts, errors = [], []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        errors.append(err)
        assert writer.returncode == 0, err
        counts.append(int(out.strip()))
    for job_id in jobs:
        code, out, err = cli_run("jobs", "wait", job_id, *where(sessions), "--timeout", "300", "--json")
        assert code == 0 and json.loads(out)["state"] == "finished", out + err
    with Session.open("t", sessions, create=False) as session:
        assert len(session.records("generation")) == sum(counts) > 0
        assert len(session.records("stats")) == 3 and len(session.evals()) == 1
        logs = "".join(Path(session.folder / "jobs" / f"{job_id}.log").read_text() for job_id in jobs)
    assert "database is locked" not in logs + "".join(errors)
    assert problems(sessions) == []
