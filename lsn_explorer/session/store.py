"""The session store: `sessions/<name>/session.sqlite` for records, `artifacts/` for tensors.

Records (stats runs, neuron sets, interventions, generations, scores, ...) are rows with a `kind`,
a `name`, a JSON payload and a JSON provenance. Jobs (background runs, see `lsn_explorer.jobs`)
are rows of their own: a JSON spec, a state, the worker's pid and its latest progress. Tensors
live beside the database as safetensors files named by the SHA-256 of their bytes, written
atomically (temp file + rename) and verified on read. SQLite (WAL) lets job processes write while
the TUI reads. Never pickle.

Opening a database written by a newer schema, or a file that is not a database, raises a
`SessionError` before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from lsn_explorer.errors import LsnError
from lsn_explorer.session.evals import EvalTables

SCHEMA_VERSION = 3
DB_NAME = "session.sqlite"
ARTIFACTS = "artifacts"

# Migration i takes a database from schema version i to i + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        created TEXT NOT NULL,
        payload TEXT NOT NULL,
        provenance TEXT NOT NULL
    );
    CREATE INDEX records_kind_name ON records (kind, name);
    CREATE TABLE artifacts (
        hash TEXT PRIMARY KEY,
        file TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created TEXT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    );
    """,
    # 1 → 2 (wave 2): background jobs. `state` is what the worker last wrote; whether a "running"
    # job still runs is the worker's file lock, not this column (see lsn_explorer.jobs.control).
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
        created TEXT NOT NULL,
        started TEXT,
        ended TEXT,
        pid INTEGER,
        progress TEXT NOT NULL DEFAULT '{}',
        error TEXT
    );
    """,
    # 2 → 3 (wave 2): full evaluations. One row per evaluation (its spec, and when it finished) and
    # one per scored sample, keyed by (evaluation, language, row, sample): a resumed run writes
    # with INSERT OR IGNORE, so a sample is stored once however often its batch is retried.
    """
    CREATE TABLE evals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        provenance TEXT NOT NULL DEFAULT '{}',
        job INTEGER,
        created TEXT NOT NULL,
        finished TEXT
    );
    CREATE TABLE eval_samples (
        eval INTEGER NOT NULL REFERENCES evals (id) ON DELETE CASCADE,
        lang TEXT NOT NULL,
        row TEXT NOT NULL,
        sample INTEGER NOT NULL,
        example_id TEXT NOT NULL,
        prediction TEXT NOT NULL,
        sample_values TEXT NOT NULL,
        extra TEXT NOT NULL,
        PRIMARY KEY (eval, lang, row, sample)
    ) WITHOUT ROWID;
    """,
)
# What a job row's `state` may hold (the worker writes it; "interrupted" is derived, never stored).
JOB_STATES = ("queued", "running", "finished", "failed", "cancelled")
_JOB_COLUMNS = "id, kind, name, spec, state, created, started, ended, pid, progress, error"
# A session name is one folder name: a letter or digit first (no ".", "..", hidden folders), then
# letters, digits (any script), "_", "-" and "."; no separators, spaces or control characters.
_NAME = re.compile(r"[^\W_][\w.-]{0,99}")


class SessionError(LsnError):
    """A session folder, database or artifact that cannot be used as asked."""


def validate_name(name: str) -> str:
    """`name` when it can name a session folder (see `_NAME`), so that it never reaches outside
    the session store.

    Raises:
        SessionError: an empty name, a path (`a/b`, `..`), a hidden name, spaces or control characters.
    """
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise SessionError(f"invalid session name {name!r}",
                           "use up to 100 letters, digits, -, _ and ., starting with a letter or digit")
    return name


def session_folder(name: str, root: str | Path | None = None) -> Path:
    """Where the session `name` lives under `root`, checked without creating or opening anything.

    Raises:
        SessionError: a bad name, a session store that is a file, or a session that is a file.
    """
    validate_name(name)
    store = Path(root) if root is not None else default_root()
    if store.exists() and not store.is_dir():
        raise SessionError(f"the session store {store} is a file, not a folder",
                           "pass --sessions-dir FOLDER (or set LSN_SESSIONS_DIR to a folder)")
    folder = store / name
    if folder.exists() and not folder.is_dir():
        raise SessionError(f"session {name!r} is a file ({folder}), not a session folder",
                           "move that file away, or use another session name")
    return folder


def default_root() -> Path:
    """`$LSN_SESSIONS_DIR`, else `./sessions`."""
    return Path(os.environ.get("LSN_SESSIONS_DIR") or "sessions")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Record:
    """One stored record."""

    id: int
    kind: str
    name: str
    created: str
    payload: dict[str, Any]
    provenance: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One job row as last written (see `lsn_explorer.jobs` for what the states mean)."""

    id: int
    kind: str
    name: str
    spec: dict[str, Any]
    state: str
    created: str
    started: str | None
    ended: str | None
    pid: int | None
    progress: dict[str, Any]
    error: str | None


class Session(EvalTables):
    """A named session folder. Use `Session.open(name)`; close with `close()` or `with`."""

    def __init__(self, folder: Path, connection: sqlite3.Connection) -> None:
        self.folder = folder
        self.name = folder.name
        self._db = connection

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, name: str, root: str | Path | None = None, *, create: bool = True) -> "Session":
        """Open (or create) the session `name` under `root`.

        Raises:
            SessionError: bad name, missing session with create=False, a newer schema, or a
                file that is not an SQLite database.
        """
        folder = session_folder(name, root)
        db_path = folder / DB_NAME
        if not db_path.exists():
            if not create:
                raise SessionError(f"no session named {name!r} in {folder.parent}",
                                   f"see `lsn-explorer session list`; a session starts with "
                                   f"`lsn-explorer stats --session {name} --langs ...`")
        else:
            if not (os.access(folder, os.W_OK) and os.access(db_path, os.W_OK)):
                # SQLite in WAL mode writes beside the database even to read it.
                raise SessionError(f"session {name!r} is read-only ({folder})",
                                   "make the folder and its session.sqlite writable, or copy the session "
                                   "folder somewhere you may write and pass --sessions-dir")
            _check_version(db_path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ARTIFACTS).mkdir(exist_ok=True)
        except OSError as exc:
            raise SessionError(f"cannot create the session folder {folder}: {exc.strerror or exc}",
                               "choose a --sessions-dir you may write to") from None
        # check_same_thread=False: the TUI writes records from its model worker thread while the UI
        # thread reads; the sqlite3 module is built serialized (threadsafety 3), so sharing is safe.
        connection = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            _migrate(connection)
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise SessionError(f"{db_path} is corrupted: {exc}", "restore it from a copy") from exc
        return cls(folder, connection)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records -------------------------------------------------------------------------------
    def add(self, kind: str, name: str, payload: dict[str, Any], provenance: dict[str, Any]) -> Record:
        """Store a record; returns it with its id. Payload and provenance must be JSON data."""
        created = now()
        cursor = self._db.execute(
            "INSERT INTO records (kind, name, created, payload, provenance) VALUES (?, ?, ?, ?, ?)",
            (kind, name, created, json.dumps(payload, ensure_ascii=False), json.dumps(provenance, ensure_ascii=False)),
        )
        assert cursor.lastrowid is not None  # always set after an INSERT
        return Record(cursor.lastrowid, kind, name, created, payload, provenance)

    def records(self, kind: str | None = None, name: str | None = None) -> list[Record]:
        """Records, oldest first, optionally filtered by kind and name."""
        sql, args = "SELECT id, kind, name, created, payload, provenance FROM records", []
        where = []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [Record(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5])) for r in rows]

    def latest(self, kind: str, name: str | None = None) -> Record | None:
        """The newest record of a kind (and name), or None."""
        found = self.records(kind, name)
        return found[-1] if found else None

    def log(self, message: str, level: str = "info") -> None:
        """Append to the session's event log (unexpected errors keep their traceback here)."""
        self._db.execute("INSERT INTO events (created, level, message) VALUES (?, ?, ?)", (now(), level, message))

    def events(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self._db.execute("SELECT created, level, message FROM events ORDER BY id")]

    # -- jobs ----------------------------------------------------------------------------------
    # Each method is one statement, so one short transaction: the app, the CLI and job workers
    # read and write the same database at once (WAL; writers wait up to the 30 s busy timeout).
    def add_job(self, kind: str, name: str, spec: dict[str, Any]) -> Job:
        """Store a new job, state "queued"; returns it with its id."""
        created = now()
        cursor = self._db.execute(
            "INSERT INTO jobs (kind, name, spec, state, created) VALUES (?, ?, ?, 'queued', ?)",
            (kind, name, json.dumps(spec, ensure_ascii=False), created),
        )
        assert cursor.lastrowid is not None  # always set after an INSERT
        return Job(cursor.lastrowid, kind, name, spec, "queued", created, None, None, None, {}, None)

    def update_job(self, job_id: int, **fields: Any) -> None:
        """Set some of a job's state, started, ended, pid, progress (a dict) and error.

        Raises:
            SessionError: no job `job_id`, or a state that is not one of `JOB_STATES`.
        """
        allowed = {"state", "started", "ended", "pid", "progress", "error"}
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"update_job: unknown fields {sorted(unknown)}")
        if "state" in fields and fields["state"] not in JOB_STATES:
            raise SessionError(f"job state {fields['state']!r} is not one of {', '.join(JOB_STATES)}")
        if "progress" in fields:
            fields["progress"] = json.dumps(fields["progress"], ensure_ascii=False)
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)  # names come from `allowed` only
        cursor = self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))
        if cursor.rowcount == 0:
            raise SessionError(f"session {self.name!r} has no job {job_id}", "see `lsn-explorer jobs list`")

    def job(self, job_id: int) -> Job | None:
        """The job `job_id` as last written, or None."""
        row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self) -> list[Job]:
        """Every job of the session, oldest first."""
        return [_job(row) for row in self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id")]

    # -- artifacts -----------------------------------------------------------------------------
    def put_tensors(self, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> str:
        """Write tensors as one safetensors artifact; returns its content hash (sha256 hex)."""
        from safetensors.torch import save

        data = save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)
        digest = hashlib.sha256(data).hexdigest()
        target = self.folder / ARTIFACTS / f"{digest}.safetensors"
        if not target.exists():
            try:
                _atomic_write(target, data)
            except OSError as exc:
                raise SessionError(f"could not write artifact {target.name}: {exc.strerror}",
                                   "free disk space or move the session store (--sessions-dir)") from exc
        self._db.execute(
            "INSERT OR IGNORE INTO artifacts (hash, file, bytes, created) VALUES (?, ?, ?, ?)",
            (digest, target.name, len(data), now()),
        )
        return digest

    def get_tensors(self, digest: str) -> dict[str, Any]:
        """Read an artifact back, checking it is present and unchanged."""
        from safetensors.torch import load

        path = self.folder / ARTIFACTS / f"{digest}.safetensors"
        if not path.is_file():
            raise SessionError(f"artifact {path.name} of session {self.name!r} is missing",
                               "the session folder was copied incompletely; recompute the record")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise SessionError(f"artifact {path.name} of session {self.name!r} is corrupted (hash mismatch)",
                               "recompute the record that produced it")
        return load(data)

    def artifact_hashes(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT hash FROM artifacts ORDER BY created")]


def list_sessions(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Summaries of the sessions under `root`: name, record counts per kind, last change."""
    root = Path(root) if root is not None else default_root()
    found = []
    for db_path in sorted(root.glob(f"*/{DB_NAME}")):
        try:
            with Session.open(db_path.parent.name, root, create=False) as session:
                counts: dict[str, int] = {}
                last = ""
                for record in session.records():
                    counts[record.kind] = counts.get(record.kind, 0) + 1
                    last = record.created
                found.append({"name": session.name, "records": counts, "last_change": last})
        except SessionError as exc:
            found.append({"name": db_path.parent.name, "error": exc.message})
    return found


def iter_kinds(records: list[Record]) -> Iterator[tuple[str, list[Record]]]:
    """Records grouped by kind, kinds in first-seen order."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(record.kind, []).append(record)
    yield from groups.items()


def _job(row: tuple[Any, ...]) -> Job:
    return Job(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7], row[8],
               json.loads(row[9]), row[10])


def _check_version(db_path: Path) -> None:
    """Refuse, without writing, a database of a newer schema or one that is not SQLite."""
    try:
        probe = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        raise SessionError(f"{db_path} is not a readable session database ({exc})",
                           "restore it from a copy, or start a new session") from exc
    if version > SCHEMA_VERSION:
        raise SessionError(
            f"session {db_path.parent.name!r} was written by a newer lsn-explorer "
            f"(schema {version}, this version reads up to {SCHEMA_VERSION})",
            "upgrade lsn-explorer to open it",
        )


def _migrate(connection: sqlite3.Connection) -> None:
    if connection.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    # IMMEDIATE takes the write lock first, and the version is read again under it: the app and a
    # job worker opening an old session at once must not both run a migration.
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        for target in range(version, SCHEMA_VERSION):
            _run_script(connection, MIGRATIONS[target])
            connection.execute(f"PRAGMA user_version = {target + 1}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _run_script(connection: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT first; run statement by statement inside our transaction.
    for statement in script.split(";"):
        if statement.strip():
            connection.execute(statement)


def _atomic_write(target: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
