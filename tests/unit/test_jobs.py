"""Background jobs on a tiny model: detached statistics that queue on the session's model lane,
survive the launcher, are killed with -9 and resumed without recomputing or duplicating a finished
language, are cancelled keeping what is done, and refuse bad requests with one error and a hint.

Workers are real processes (`python -m lsn_explorer.jobs run`), each paying the torch import,
so every test here starts as few as its checks need.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from workers import reap_workers

from lsn_explorer import cli
from lsn_explorer.errors import JobError, LsnError
from lsn_explorer.jobs import control
from lsn_explorer.jobs.locks import lock_path, try_lock
from lsn_explorer.jobs.progress import ProgressWriter
from lsn_explorer.jobs.spec import StatsJob, spec_from_json
from lsn_explorer.session.store import SCHEMA_VERSION, Session, SessionError

WAVE1 = Path(__file__).parents[1] / "fixtures" / "wave1-sessions"  # a schema-1 session (wave 1)
SENTENCES = {
    "en": ["the cat sleeps in the sun.", "we walk to the river.", "a dog runs fast.", "rain falls at night."],
    "fr": ["le chat dort au soleil.", "nous marchons au fleuve.", "un chien court vite.", "la pluie tombe."],
    "es": ["el gato duerme al sol.", "vamos al rio.", "un perro corre.", "la lluvia cae de noche."],
}
@pytest.fixture(autouse=True)
def no_worker_left_running():
    """Every worker a test started has ended when the test does (none outlives the suite)."""
    yield
    stuck = reap_workers()
    if stuck:
        pytest.fail(f"workers {stuck} were still running a minute after their test")


# Windows of 8 tokens, one per forward pass: about 65 passes per language, a second or two on a
# tiny model, long enough to kill or cancel a worker between two languages.
SLOW = ["--window", "8", "--batch-size", "1"]


@pytest.fixture()
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for lang, lines in SENTENCES.items():
        (folder / f"{lang}.txt").write_text("\n".join(lines * 6) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def no_stray_workers(tmp_path):
    """Workers are detached on purpose; kill any still running when a test ends (a failed one)."""
    yield
    if not (tmp_path / "sessions" / "t" / "session.sqlite").is_file():
        return
    with Session.open("t", tmp_path / "sessions", create=False) as session:
        for job in control.list_jobs(session):
            if job.state in control.ACTIVE and job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(code, err, *fragments):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 2 and "\nhint: " in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def where(tmp_path):
    return ["--sessions-dir", tmp_path / "sessions", "--session", "t"]


def detach(capsys, tiny_checkpoints, tmp_path, corpus, langs, *extra):
    code, out, err = run(capsys, "stats", "--model", tiny_checkpoints["llama"], *where(tmp_path), "--langs", langs,
                         "--corpus", corpus, *extra, "--detach")
    assert code == 0, err
    return int(out.strip().splitlines()[-1])  # the job id alone on the last line


def show(capsys, tmp_path, job_id):
    code, out, err = run(capsys, "jobs", "show", job_id, *where(tmp_path), "--json")
    assert code == 0, err
    return json.loads(out)


def listed(capsys, tmp_path):
    code, out, err = run(capsys, "jobs", "list", *where(tmp_path), "--json")
    assert code == 0, err
    return {job["id"]: job for job in json.loads(out)}


def until(check, what, timeout=60.0):
    """Poll `check` (every 50 ms) until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stats_records(tmp_path):
    with Session.open("t", tmp_path / "sessions", create=False) as session:
        return {(r.name, r.id) for r in session.records("stats")}


def integrity(tmp_path):
    db = sqlite3.connect(tmp_path / "sessions" / "t" / "session.sqlite")
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def test_jobs_of_one_session_queue_on_one_lane_and_finish_detached(capsys, tiny_checkpoints, tmp_path, corpus):
    first = detach(capsys, tiny_checkpoints, tmp_path, corpus, "en,fr", *SLOW)
    second = detach(capsys, tiny_checkpoints, tmp_path, corpus, "es", "--window", "16")
    third = detach(capsys, tiny_checkpoints, tmp_path, corpus, "es", "--window", "8")
    running = until(lambda: (job := show(capsys, tmp_path, first))["state"] == "running" and job, "the first job to run")
    # Detached: its own process group (and session), so the launcher's Ctrl+C or exit never reaches it.
    assert os.getpgid(running["pid"]) == running["pid"] != os.getpgrp()
    assert running["log"] == str((tmp_path / "sessions" / "t" / "jobs" / f"{first}.log").resolve())
    log = tmp_path / "sessions" / "t" / "jobs" / f"{second}.log"
    jobs = until(lambda: log.is_file() and f"--- job {second} (" in log.read_text()  # its worker is up
                 and (jobs := listed(capsys, tmp_path))[first]["state"] == "running" and jobs,
                 "the second job's worker to start while the first runs")
    assert jobs[second]["state"] == jobs[third]["state"] == "queued" and jobs[second]["pid"] is not None
    code, out, _ = run(capsys, "jobs", "cancel", third, *where(tmp_path))  # cancelled while it waits
    assert code == 0 and f"job {third}: asked to stop" in out
    for job_id, status in ((first, 0), (second, 0), (third, 1)):
        code, out, err = run(capsys, "jobs", "wait", job_id, *where(tmp_path), "--timeout", "90")
        assert code == status, out + err
    jobs = listed(capsys, tmp_path)
    assert [jobs[i]["state"] for i in (first, second, third)] == ["finished", "finished", "cancelled"]
    assert jobs[third]["progress"]["message"] == "cancelled while queued" and jobs[third]["started"] is None
    assert jobs[first]["ended"] <= jobs[second]["started"]  # one model lane: one after the other
    assert jobs[first]["pid"] is None and jobs[first]["progress"]["units_done"] == 2
    assert sorted(name for name, _ in stats_records(tmp_path)) == ["en", "es", "fr"]
    code, out, _ = run(capsys, "jobs", "log", first, *where(tmp_path))
    assert "en: 520 tokens collected" in out and f"--- job {first} finished" in out, out
    code, out, _ = run(capsys, "jobs", "list", *where(tmp_path))
    assert f"{first:>4}  finished    stats en,fr" in out and "cancelled while queued" in out


def test_kill_9_then_resume_keeps_finished_languages(capsys, tiny_checkpoints, tmp_path, corpus):
    job_id = detach(capsys, tiny_checkpoints, tmp_path, corpus, "en,fr", *SLOW)
    job = until(lambda: (job := show(capsys, tmp_path, job_id))["progress"].get("units_done", 0) >= 1 and job,
                "the first language to finish")
    os.killpg(job["pid"], signal.SIGKILL)
    job = until(lambda: (job := listed(capsys, tmp_path)[job_id])["state"] == "interrupted" and job,
                "the killed job to read as interrupted")
    assert job["pid"] is None and job["ended"] is None
    before = stats_records(tmp_path)
    assert {name for name, _ in before} == {"en"}  # killed while fr was being collected
    assert integrity(tmp_path) == "ok"

    # Two resumes at once (the app and a terminal): exactly one starts a worker.
    outcomes = []

    def resume():
        with Session.open("t", tmp_path / "sessions", create=False) as session:
            try:
                outcomes.append(control.resume(session, job_id))
            except JobError as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["JobError", "int"], outcomes
    code, _, err = run(capsys, "jobs", "resume", job_id, *where(tmp_path))  # and a third, from the CLI
    assert_error(code, err, f"job {job_id} is already", "jobs wait")

    code, out, err = run(capsys, "jobs", "wait", job_id, *where(tmp_path), "--timeout", "90", "--json")
    assert code == 0 and json.loads(out)["state"] == "finished", out + err
    after = stats_records(tmp_path)
    assert before <= after  # the languages finished before the kill kept their records (same ids)
    assert sorted(name for name, _ in after) == ["en", "fr"]  # each stored once
    assert integrity(tmp_path) == "ok"
    code, out, _ = run(capsys, "jobs", "log", job_id, *where(tmp_path))
    assert "en: 520 tokens already in the session" in out and out.count(f"--- job {job_id} (") == 2


def test_cancel_keeps_finished_languages(capsys, tiny_checkpoints, tmp_path, corpus):
    job_id = detach(capsys, tiny_checkpoints, tmp_path, corpus, "en,fr", *SLOW)
    until(lambda: show(capsys, tmp_path, job_id)["progress"].get("units_done", 0) >= 1, "the first language to finish")
    code, out, err = run(capsys, "jobs", "cancel", job_id, *where(tmp_path))
    assert code == 0, err
    code, out, _ = run(capsys, "jobs", "wait", job_id, *where(tmp_path), "--timeout", "60", "--json")
    job = json.loads(out)
    assert code == 1 and job["state"] == "cancelled" and job["error"] is None
    assert job["progress"]["message"].startswith("cancelled after ")
    assert [name for name, _ in stats_records(tmp_path)] == ["en"]  # fr was cancelled, unfinished
    code, _, err = run(capsys, "jobs", "cancel", job_id, *where(tmp_path))
    assert_error(code, err, "is not running (it is cancelled)", f"jobs resume {job_id}")


def test_a_failed_job_records_its_error_and_resumes_once_fixed(capsys, tiny_checkpoints, tmp_path, corpus):
    job_id = detach(capsys, tiny_checkpoints, tmp_path, corpus, "en,fr", "--window", "16")
    moved = corpus / "fr.txt.away"
    (corpus / "fr.txt").rename(moved)  # gone before the worker (still importing torch) looks
    code, out, _ = run(capsys, "jobs", "wait", job_id, *where(tmp_path), "--timeout", "60", "--json")
    job = json.loads(out)
    assert code == 1 and job["state"] == "failed"
    assert job["error"].startswith("no corpus text for fr in ") and "(hint: languages with text there: en, es" in job["error"]
    code, out, _ = run(capsys, "jobs", "log", job_id, *where(tmp_path), "--lines", "3")
    error, hint, end = out.splitlines()
    assert error.startswith("error: no corpus text for fr") and hint.startswith("hint: languages with")
    assert end.startswith(f"--- job {job_id} failed: no corpus text")
    assert stats_records(tmp_path) == set()  # it failed before the model loaded
    moved.rename(corpus / "fr.txt")
    code, out, err = run(capsys, "jobs", "resume", job_id, *where(tmp_path))
    assert code == 0 and f"job {job_id}: resumed" in out, err
    code, out, _ = run(capsys, "jobs", "wait", job_id, *where(tmp_path), "--timeout", "60", "--json")
    assert code == 0 and json.loads(out)["error"] is None
    assert sorted(name for name, _ in stats_records(tmp_path)) == ["en", "fr"]


def test_bad_job_requests_are_one_line_errors(capsys, tiny_checkpoints, tmp_path, corpus):
    with Session.open("t", tmp_path / "sessions") as session:
        spec = StatsJob(langs=["en"], workdir=str(tmp_path))
        done = session.add_job("stats", spec.title(), spec.to_json())
        session.update_job(done.id, state="finished")
        alien = session.add_job("distill", "from the future", {"kind": "distill", "version": 1})
        session.update_job(alien.id, state="failed")
    code, _, err = run(capsys, "jobs", "show", 99, *where(tmp_path))
    assert_error(code, err, "has no job 99", f"its jobs: {done.id}, {alien.id}")
    code, _, err = run(capsys, "jobs", "resume", done.id, *where(tmp_path))
    assert_error(code, err, "has already finished", "jobs show")
    code, _, err = run(capsys, "jobs", "resume", alien.id, *where(tmp_path))
    assert_error(code, err, "unknown job kind 'distill'", "newer lsn-explorer")
    code, _, err = run(capsys, "jobs", "cancel", done.id, *where(tmp_path))
    assert_error(code, err, "is not running (it is finished)")
    code, _, err = run(capsys, "jobs", "wait", *where(tmp_path))
    assert_error(code, err, "needs a job id", "jobs list")
    code, _, err = run(capsys, "jobs", "list", "--sessions-dir", tmp_path / "sessions", "--session", "nope")
    assert_error(code, err, "no session named 'nope'")
    base = ["stats", *where(tmp_path), "--corpus", corpus, "--detach"]
    code, _, err = run(capsys, *base, "--model", tmp_path / "no-model", "--langs", "en")
    assert_error(code, err, "does not exist")
    code, _, err = run(capsys, *base, "--model", tiny_checkpoints["llama"], "--langs", "en", "--shard", "0/2")
    assert_error(code, err, "--shard and --detach")
    code, _, err = run(capsys, *base, "--model", tiny_checkpoints["llama"], "--langs", "en", "--window", "0")
    assert_error(code, err, "window 0 is out of range")
    with Session.open("t", tmp_path / "sessions") as session:
        assert [job.id for job in session.jobs()] == [done.id, alien.id]  # nothing was launched
        with pytest.raises(SessionError, match="has no job 99"):
            session.update_job(99, state="running")
        with pytest.raises(SessionError, match="job state 'paused'"):
            session.update_job(done.id, state="paused")


def test_a_job_row_without_a_live_worker_reads_as_interrupted(tmp_path):
    with Session.open("t", tmp_path) as session:
        job = session.add_job("stats", "stats en", StatsJob(langs=["en"], workdir=".").to_json())
        session.update_job(job.id, state="running", pid=os.getpid())
        assert control.status(session, job.id).state == "interrupted"  # nobody holds its lock
        with pytest.raises(JobError, match="is not running") as info:
            control.cancel(session, job.id)
        assert "jobs resume" in info.value.hint


def test_a_worker_started_by_hand_refuses_a_job_whose_lock_is_held(tmp_path):
    with Session.open("t", tmp_path) as session:
        job = session.add_job("stats", "stats en", StatsJob(langs=["en"], workdir=".").to_json())
        fd = try_lock(lock_path(session.folder, job.id))  # as a running worker would hold it
        assert fd is not None and control.status(session, job.id).state == "queued"
        try:
            worker = subprocess.run([sys.executable, "-m", "lsn_explorer.jobs", "run", "--session", "t",
                                     "--job", str(job.id), "--sessions-dir", str(tmp_path)],
                                    capture_output=True, text=True, timeout=120)
        finally:
            os.close(fd)
        assert worker.returncode == 2 and worker.stdout == ""
        assert worker.stderr.startswith(f"error: job {job.id} is already running in another process\nhint: ")
        assert session.job(job.id) == job  # nothing recorded
        assert control.status(session, job.id).state == "interrupted"  # now that nobody holds the lock


def test_progress_writes_are_throttled_but_units_always_written(tmp_path):
    now = [0.0]
    with Session.open("t", tmp_path) as session:
        job = session.add_job("stats", "stats en", {})
        progress = ProgressWriter(session, job.id, interval=0.25, clock=lambda: now[0])
        for now[0], done in ((0.0, 10), (0.1, 20), (0.2, 30), (0.3, 40)):  # written at 0 and 0.3 only
            progress("en", done, 100)
        assert progress.writes == 2 and session.job(job.id).progress["done"] == 40
        now[0] = 0.35
        progress("en", 50, 100)  # skipped
        assert session.job(job.id).progress["done"] == 40
        progress.unit_finished(1, 2, "en: done")  # a unit boundary is always written
        stored = session.job(job.id).progress
        assert stored["done"] == 50 and stored["units_done"] == 1 and stored["message"] == "en: done"
        # speed counts from the first report (10 done at t = 0 were not timed): 40 in 0.35 s
        assert stored["per_second"] == pytest.approx((50 - 10) / 0.35, rel=0.01) and stored["eta_s"] is not None


def test_stats_job_spec_round_trips_and_validates():
    spec = StatsJob(langs=["en", "fr"], workdir="/w", corpus=["c"], model="m", window=16, max_tokens=500)
    assert spec_from_json(json.loads(json.dumps(spec.to_json()))) == spec
    for fields, fragment in [({"langs": []}, "at least one language"), ({"langs": ["en", "en"]}, "repeat"),
                             ({"langs": ["en"], "dtype": "int3"}, "dtype 'int3'"),
                             ({"langs": ["en"], "batch_size": 0}, "batch_size 0 is out of range"),
                             ({"langs": ["en"], "site": "q"}, "site 'q'")]:
        with pytest.raises(LsnError, match=fragment):
            StatsJob(**fields)
    with pytest.raises(JobError, match="did you mean stats"):
        spec_from_json({"kind": "stat"})


def test_a_version_1_session_migrates_and_keeps_its_records(tmp_path):
    shutil.copytree(WAVE1, tmp_path / "sessions")
    db_path = tmp_path / "sessions" / "wave1" / "session.sqlite"
    old = sqlite3.connect(db_path)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    rows = old.execute("SELECT id, kind, name, payload FROM records ORDER BY id").fetchall()
    old.close()
    with Session.open("wave1", tmp_path / "sessions", create=False) as session:
        assert [(r.id, r.kind, r.name) for r in session.records()] == [row[:3] for row in rows]
        assert session.jobs() == [] and session.evals() == []  # schema 2 and 3 tables, empty
        job = session.add_job("stats", "stats en", {"kind": "stats"})
        assert session.job(job.id) == job
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
