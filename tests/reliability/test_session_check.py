"""`lsn-explorer session check [--repair]` on real sessions, corrupted one way at a time.

Each session is built by the real commands (statistics on a tiny checkpoint), given a stored
adapter folder and a finished job, then broken the way a crash, a bad copy or a dying disk breaks
it. The check must find each problem, `--repair` must fix only the safe ones and say so, and a
clean session must pass without being written to.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
import torch

from lsn_explorer import cli
from lsn_explorer.core.finetune.adapters import folder_hash
from lsn_explorer.jobs import control
from lsn_explorer.jobs.locks import lock_path, try_lock
from lsn_explorer.session.store import Session

SENTENCES = {
    "en": ["the cat sleeps in the sun.", "we walk to the river.", "a dog runs fast.", "rain falls at night."],
    "fr": ["le chat dort au soleil.", "nous marchons au fleuve.", "un chien court vite.", "la pluie tombe."],
}
OLD = time.time() - 3600  # an hour ago: past the grace period for files nobody recorded


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def check(capsys, root, *extra, name="s"):
    return run(capsys, "session", "check", name, "--sessions-dir", root, *extra)


@pytest.fixture(scope="module")
def built(tiny_checkpoints, tmp_path_factory):
    """A session made by `stats` (two languages), with an adapter record and a finished job."""
    base = tmp_path_factory.mktemp("built")
    corpus = base / "corpus"
    corpus.mkdir()
    for lang, lines in SENTENCES.items():
        (corpus / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli.main(["stats", "--model", str(tiny_checkpoints["llama"]), "--sessions-dir", str(base / "sessions"),
                     "--session", "s", "--langs", "en,fr", "--corpus", str(corpus), "--window", "16"]) == 0
    with Session.open("s", base / "sessions") as session:
        folder = session.folder / "artifacts" / "adapters" / "zh-lora-0123456789ab"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}', encoding="utf-8")
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        session.add("adapter", "zh-lora", {"folder": str(folder.relative_to(session.folder)),
                                           "hash": folder_hash(folder)}, {})
        job = session.add_job("stats", "stats en", {"kind": "stats"})
        session.update_job(job.id, state="finished")
    return base / "sessions"


@pytest.fixture()
def root(built, tmp_path):
    shutil.copytree(built, tmp_path / "sessions")
    return tmp_path / "sessions"


def stats_artifact(root):
    with Session.open("s", root, create=False) as session:
        digest = session.latest("stats", "en").payload["artifact"]
    return root / "s" / "artifacts" / f"{digest}.safetensors"


def test_a_clean_session_passes_and_is_not_written_to(capsys, root):
    db = root / "s" / "session.sqlite"
    before = db.read_bytes()
    code, out, err = check(capsys, root)
    assert code == 0 and err == "" and out.rstrip().endswith("ok: no problems"), out
    assert "problem:" not in out and "records" in out and "2 artifacts, 1 adapters" in out
    assert db.read_bytes() == before
    code, out, _ = check(capsys, root, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["findings"] == []
    assert report["checked"] == {"jobs": 1, "records": 3, "artifacts": 2, "adapters": 1}


def test_a_deleted_artifact_is_found_and_not_repairable(capsys, root):
    path = stats_artifact(root)
    path.unlink()
    code, out, _ = check(capsys, root)
    assert code == 1 and f"problem: [artifact] {path.name}, needed by record #" in out and "is missing" in out
    assert "(stats en)" in out and "1 problem(s) remain" in out
    code, out, _ = check(capsys, root, "--repair")
    assert code == 1 and "repaired:" not in out and not path.exists()
    with Session.open("s", root, create=False) as session:
        assert session.latest("stats", "en") is not None  # the record is kept


def test_a_garbled_artifact_is_found_and_left_as_it_is(capsys, root):
    path = stats_artifact(root)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out, _ = check(capsys, root, "--repair")
    assert code == 1 and "is corrupted (its content no longer matches its hash)" in out and "hint: restore" in out
    assert path.read_bytes() == bytes(data)


def test_an_orphaned_artifact_is_quarantined_by_repair(capsys, root):
    with Session.open("s", root, create=False) as session:
        digest = session.put_tensors({"x": torch.ones(3)})  # stored, then its record never written
    orphan = root / "s" / "artifacts" / f"{digest}.safetensors"
    os.utime(orphan, (OLD, OLD))
    code, out, _ = check(capsys, root)
    assert code == 1 and f"problem: [orphan] {orphan.name}" in out and "no record refers to it" in out
    assert "--repair would: move it to quarantine/" in out and orphan.exists()
    code, out, _ = check(capsys, root, "--repair")
    assert code == 0 and f"repaired: moved to quarantine/{orphan.name}" in out
    assert not orphan.exists() and (root / "s" / "quarantine" / orphan.name).is_file()
    with Session.open("s", root, create=False) as session:
        assert digest not in session.artifact_hashes()
    assert check(capsys, root)[0] == 0


def test_a_fresh_orphan_or_one_beside_a_running_job_stays(capsys, root):
    stray = root / "s" / "artifacts" / ("ab" * 32 + ".safetensors")
    stray.write_bytes(b"just written")  # a writer may be about to record it
    code, out, _ = check(capsys, root, "--repair")
    assert code == 1 and "left in place: younger than" in out and stray.exists()
    os.utime(stray, (OLD, OLD))
    with Session.open("s", root, create=False) as session:
        job = session.add_job("stats", "stats fr", {"kind": "stats"})
        session.update_job(job.id, state="running")
        fd = try_lock(lock_path(session.folder, job.id))  # as its live worker holds it
    try:
        code, out, _ = check(capsys, root, "--repair")
    finally:
        os.close(fd)
    assert code == 1 and "a job is running" in out and stray.exists() and "interrupted" not in out


def test_leftovers_of_interrupted_writes_are_deleted(capsys, root):
    tmp = root / "s" / "artifacts" / ".tmp-x1y2.safetensors"
    staging = root / "s" / "artifacts" / "adapters" / ".staging-zh-lora"
    tmp.write_bytes(b"half")
    staging.mkdir()
    (staging / "adapter_config.json").write_text("{", encoding="utf-8")
    for path in (tmp, staging):
        os.utime(path, (OLD, OLD))
    code, out, _ = check(capsys, root)
    assert code == 1 and out.count("problem: [leftover]") == 2 and "interrupted write" in out
    code, out, _ = check(capsys, root, "--repair")
    assert code == 0 and out.count("repaired: deleted") == 2 and not tmp.exists() and not staging.exists()


def test_an_interrupted_job_is_recorded_as_failed_and_stays_resumable(capsys, root):
    with Session.open("s", root, create=False) as session:
        job = session.add_job("stats", "stats fr", {"kind": "stats"})
        session.update_job(job.id, state="running", pid=os.getpid())  # its worker died: lock free
    code, out, _ = check(capsys, root)
    assert code == 1 and f"problem: [job] job {job.id} (stats fr) was interrupted" in out
    assert f"jobs resume {job.id} --session s" in out
    code, out, _ = check(capsys, root, "--repair")
    assert code == 0 and f"repaired: recorded job {job.id} as failed (interrupted)" in out
    with Session.open("s", root, create=False) as session:
        after = control.status(session, job.id)
        assert after.state == "failed" and after.state in control.RESUMABLE and "interrupted" in after.error
    assert check(capsys, root)[0] == 0


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_a_damaged_database_is_reported_and_left_alone(capsys, root, damage):
    db = root / "s" / "session.sqlite"
    data = db.read_bytes()
    db.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"x" * len(data)}[damage])
    before = db.read_bytes()
    for extra in ((), ("--repair",)):
        code, out, err = check(capsys, root, *extra)
        assert code == 1 and err == "" and "problem: [database]" in out and "restore session.sqlite" in out, out
        assert "Traceback" not in out and "repaired" not in out
    assert db.read_bytes() == before


def test_a_changed_or_missing_adapter_folder_is_found(capsys, root):
    folder = root / "s" / "artifacts" / "adapters" / "zh-lora-0123456789ab"
    (folder / "adapter_model.safetensors").write_bytes(b"other weights")
    code, out, _ = check(capsys, root)
    assert code == 1 and "has changed since it was stored (hash mismatch)" in out
    shutil.rmtree(folder)
    code, out, _ = check(capsys, root, "--repair")
    assert code == 1 and "is missing or incomplete" in out


def test_an_orphaned_adapter_folder_is_quarantined(capsys, root):
    extra = root / "s" / "artifacts" / "adapters" / "old-lora-aaaaaaaaaaaa"
    extra.mkdir()
    (extra / "adapter_config.json").write_text("{}", encoding="utf-8")
    os.utime(extra, (OLD, OLD))
    code, out, _ = check(capsys, root)
    assert code == 1 and "adapter folder old-lora-aaaaaaaaaaaa" in out
    code, out, _ = check(capsys, root, "--repair", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["repaired"] == 1
    assert (root / "s" / "quarantine" / extra.name / "adapter_config.json").is_file() and not extra.exists()


def test_repair_lists_a_referenced_file_missing_from_the_table_and_drops_a_stale_row(capsys, root):
    path = stats_artifact(root)
    db = sqlite3.connect(root / "s" / "session.sqlite")
    db.execute("DELETE FROM artifacts WHERE hash = ?", (path.name.removesuffix(".safetensors"),))
    db.execute("INSERT INTO artifacts VALUES (?, ?, 1, '2024-01-01')", ("cd" * 32, "cd" * 32 + ".safetensors"))
    db.commit()
    db.close()
    code, out, _ = check(capsys, root)
    assert code == 1 and "is not listed in the artifacts table" in out and "whose file is gone" in out
    code, out, _ = check(capsys, root, "--repair")
    assert code == 0 and "repaired: listed in the artifacts table" in out and "repaired: dropped the table row" in out
    with Session.open("s", root, create=False) as session:
        hashes = session.artifact_hashes()
    assert path.name.removesuffix(".safetensors") in hashes and "cd" * 32 not in hashes


def test_an_unreadable_record_payload_is_a_problem_not_a_crash(capsys, root):
    db = sqlite3.connect(root / "s" / "session.sqlite")
    db.execute("UPDATE records SET payload = '{\"artifact\": ' WHERE kind = 'adapter'")
    db.commit()
    db.close()
    code, out, err = check(capsys, root)
    assert code == 1 and "(adapter zh-lora) has an unreadable payload" in out and "Traceback" not in err


@pytest.mark.parametrize("make, fragment", [
    (lambda root: None, "no session named 'ghost'"),
    (lambda root: (root / "ghost").write_text("not a folder"), "is a file"),
    (lambda root: (root / "ghost").mkdir(), "no session named 'ghost'"),
])
def test_bad_sessions_are_one_line_errors(capsys, root, make, fragment):
    make(root)
    code, out, err = check(capsys, root, name="ghost")
    assert code == 2 and out == "" and err.startswith("error: ") and fragment in err.splitlines()[0]
    assert len(err.splitlines()) == 2 and err.splitlines()[1].startswith("hint: ") and "Traceback" not in err


@pytest.mark.parametrize("name", ["../s", ".hidden", "a b"])
def test_bad_names_are_refused(capsys, root, name):
    code, _, err = check(capsys, root, name=name)
    assert code == 2 and err.startswith(f"error: invalid session name {name!r}\nhint: ")


def test_a_store_that_is_a_file_and_a_missing_name(capsys, tmp_path):
    (tmp_path / "store").write_text("x")
    code, _, err = run(capsys, "session", "check", "s", "--sessions-dir", tmp_path / "store")
    assert code == 2 and "is a file, not a folder" in err and "\nhint: " in err
    code, _, err = run(capsys, "session", "check", "--sessions-dir", tmp_path)
    assert code == 2 and err.startswith("error: no session name\nhint: ") and "session check demo" in err


def test_an_older_schema_is_checked_read_only_and_migrated_by_repair(capsys, tmp_path):
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "wave1-sessions", tmp_path / "sessions")
    root, db = tmp_path / "sessions", tmp_path / "sessions" / "wave1" / "session.sqlite"
    before = db.read_bytes()
    code, out, _ = check(capsys, root, name="wave1")
    assert code == 0 and "note: [database] schema 1 is older than 3" in out and db.read_bytes() == before
    code, out, _ = check(capsys, root, "--repair", name="wave1")
    assert code == 0 and "repaired: migrated to schema 3" in out
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 3
