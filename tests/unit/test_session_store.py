"""Session store: records, content-addressed artifacts, schema checks and failure modes."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from lsn_explorer.session.store import SCHEMA_VERSION, Session, SessionError, list_sessions


def test_records_and_artifacts_round_trip(tmp_path):
    with Session.open("s1", tmp_path) as session:
        digest = session.put_tensors({"x": torch.arange(6.0).reshape(2, 3)}, {"lang": "zh"})
        record = session.add("stats", "zh", {"artifact": digest}, {"seed": 3})
        assert session.put_tensors({"x": torch.arange(6.0).reshape(2, 3)}, {"lang": "zh"}) == digest
    with Session.open("s1", tmp_path, create=False) as again:
        (stored,) = again.records("stats")
        assert stored == record
        assert torch.equal(again.get_tensors(digest)["x"], torch.arange(6.0).reshape(2, 3))
        assert again.latest("stats", "zh").payload["artifact"] == digest
    assert list_sessions(tmp_path) == [{"name": "s1", "records": {"stats": 1}, "last_change": record.created}]
    db = sqlite3.connect(tmp_path / "s1" / "session.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused_without_change(tmp_path):
    Session.open("s", tmp_path).close()
    db_path = tmp_path / "s" / "session.sqlite"
    db = sqlite3.connect(db_path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = db_path.read_bytes()
    with pytest.raises(SessionError, match="newer lsn-explorer") as info:
        Session.open("s", tmp_path)
    assert "upgrade" in info.value.hint
    assert db_path.read_bytes() == before


def test_corrupted_database_and_artifacts(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "session.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SessionError, match="not a readable session database"):
        Session.open("bad", tmp_path)
    assert (tmp_path / "bad" / "session.sqlite").read_bytes() == b"this is not sqlite" * 100

    with Session.open("ok", tmp_path) as session:
        digest = session.put_tensors({"x": torch.ones(3)})
        path = tmp_path / "ok" / "artifacts" / f"{digest}.safetensors"
        path.write_bytes(path.read_bytes()[:-1] + b"\x01")
        with pytest.raises(SessionError, match="corrupted"):
            session.get_tensors(digest)
        path.unlink()
        with pytest.raises(SessionError, match=f"{digest}.safetensors .* is missing"):
            session.get_tensors(digest)


def test_missing_session_and_bad_names(tmp_path):
    with pytest.raises(SessionError, match="no session named"):
        Session.open("ghost", tmp_path, create=False)
    assert not (tmp_path / "ghost").exists()
    with pytest.raises(SessionError, match="invalid session name"):
        Session.open("../escape", tmp_path)


def test_sessions_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LSN_SESSIONS_DIR", str(tmp_path / "elsewhere"))
    Session.open("e").close()
    assert (tmp_path / "elsewhere" / "e" / "session.sqlite").is_file()
