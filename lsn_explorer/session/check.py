"""Checking a session folder (`lsn-explorer session check`), and repairing only what is safe.

What is checked: the database (`PRAGMA integrity_check`, foreign keys, schema version); every
artifact a record refers to (present, its content hash unchanged, listed in the `artifacts`
table); adapter folders (inside the session, complete, their folder hash unchanged); files in
`artifacts/` that no record refers to (orphans) and leftovers of interrupted writes; job rows
that say queued or running while no worker holds their lock (interrupted).

What `repair` does, and nothing else: record interrupted jobs as failed (under the job's lock,
so a resume racing the repair cannot be overwritten; `jobs resume` still continues them); move
orphans into `<session>/quarantine/` (never deleted: the user decides), drop `artifacts` rows
whose file is gone and that nothing refers to, add missing rows for referenced files whose hash
is right, delete leftovers of interrupted writes (`.tmp-*`, `.staging-*`). Orphans and leftovers
are only touched once older than `grace_s` and while no job runs, since a writer that is still
working (a job, the app, a foreground command) stores its artifact a moment before its record.
A broken database, a missing or corrupted artifact and a broken adapter are reported with a hint;
no repair can bring their data back.

Layering: the session layer cannot ask the job locks or hash an adapter folder itself (those
live above it), so the caller passes them in as `Probes`. No printing here; the CLI prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

from lsn_explorer.session.store import (
    ARTIFACTS,
    DB_NAME,
    SCHEMA_VERSION,
    Job,
    Session,
    SessionError,
    default_root,
    now,
    validate_name,
)

QUARANTINE = "quarantine"  # beside artifacts/: orphans moved here by --repair, never deleted
ADAPTERS = "adapters"  # artifacts/adapters/<name>-<hash>/ (see core.finetune.adapters)
GRACE_S = 600.0  # files younger than this may belong to a writer that has not recorded them yet
ARTIFACT_KEYS = ("artifact", "accumulator")  # payload keys that must name a stored artifact
_HASH = re.compile(r"[0-9a-f]{64}")
_ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class Probes:
    """What the check needs from the layers above the session store.

    Attributes:
        job_states: every job with its real state, "interrupted" derived from its lock
            (`jobs.control.list_jobs`).
        take_job_lock: the job's lock taken (an open descriptor), or None while a worker holds it
            (`jobs.locks.try_lock` on the job's lock file).
        folder_hash: an adapter folder's content hash (`core.finetune.adapters.folder_hash`).
    """

    job_states: Callable[[Session], list[Job]]
    take_job_lock: Callable[[Session, int], int | None]
    folder_hash: Callable[[Path], str]


@dataclass
class Finding:
    """One thing the check found. `problem` False: worth knowing, nothing is wrong."""

    area: str  # database | record | artifact | adapter | orphan | leftover | job
    message: str
    hint: str = ""
    repair: str = ""  # what --repair does about it ("" when nothing safe can be done)
    repaired: str = ""  # what --repair did
    problem: bool = True


@dataclass
class CheckReport:
    """Everything `check_session` found, and what it repaired."""

    session: str
    checked: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def remaining(self) -> list[Finding]:
        """Problems that are still there (not repaired)."""
        return [f for f in self.findings if f.problem and not f.repaired]

    @property
    def ok(self) -> bool:
        return not self.remaining

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session, "ok": self.ok, "checked": self.checked,
                "problems_remaining": len(self.remaining),
                "repaired": sum(1 for f in self.findings if f.repaired),
                "findings": [asdict(f) for f in self.findings]}


def check_session(name: str, root: str | Path | None = None, *, probes: Probes, repair: bool = False,
                  grace_s: float = GRACE_S) -> CheckReport:
    """Check the session `name` under `root`; with `repair`, also fix what is safe (module doc).

    Without `repair` nothing is written (the database is opened read-only).

    Raises:
        SessionError: a bad name, no such session, or a session path that is not a folder.
    """
    folder = _locate(name, root)
    report = CheckReport(name)
    version = _check_database(folder / DB_NAME, report)
    if version is None:
        return report
    if version < SCHEMA_VERSION:
        older = Finding("database", f"schema {version} is older than {SCHEMA_VERSION}",
                        "it is migrated the next time a command writes to the session", problem=False)
        if repair:
            Session.open(name, folder.parent, create=False).close()  # migrates, as any command would
            older.repaired, older.hint = f"migrated to schema {SCHEMA_VERSION}", ""
        report.findings.append(older)
    connection = _connect(folder / DB_NAME, writable=repair)
    with Session(folder, connection) as session:
        checker = _Checker(session, connection, report, probes, repair, grace_s)
        checker.jobs()
        refs = checker.records()
        checker.files(refs)
    return report


# -- the database --------------------------------------------------------------------------------
def _locate(name: str, root: str | Path | None) -> Path:
    validate_name(name)
    store = Path(root) if root is not None else default_root()
    folder = store / name
    if store.exists() and not store.is_dir():
        raise SessionError(f"the session store {store} is a file, not a folder",
                           "pass --sessions-dir FOLDER (or set LSN_SESSIONS_DIR to a folder)")
    if folder.exists() and not folder.is_dir():
        raise SessionError(f"session {name!r} is a file ({folder}), not a session folder",
                           "move that file away, or check the name")
    if not (folder / DB_NAME).is_file():
        raise SessionError(f"no session named {name!r} in {store}", "see `lsn-explorer session list`")
    return folder


def _connect(db_path: Path, *, writable: bool) -> sqlite3.Connection:
    uri = f"file:{db_path}" + ("" if writable else "?mode=ro")
    return sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)


def _check_database(db_path: Path, report: CheckReport) -> int | None:
    """The schema version when the database can be read, else None (a finding says why)."""
    hint = "restore session.sqlite from a copy; the artifacts alone cannot rebuild the records"
    if db_path.stat().st_size == 0:
        report.findings.append(Finding("database", f"{DB_NAME} is empty (0 bytes): its records are gone", hint))
        return None
    try:
        connection = _connect(db_path, writable=False)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            result = [row[0] for row in connection.execute("PRAGMA integrity_check(20)")]
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            dangling = connection.execute("PRAGMA foreign_key_check").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        report.findings.append(Finding("database", f"{DB_NAME} cannot be read: {exc}", hint))
        return None
    if result != ["ok"]:
        more = f" (and {len(result) - 1} more)" if len(result) > 1 else ""
        report.findings.append(Finding("database", f"integrity check failed: {result[0]}{more}", hint))
        return None
    if version > SCHEMA_VERSION:
        report.findings.append(Finding("database", f"schema {version} is newer than this lsn-explorer reads "
                                       f"({SCHEMA_VERSION})", "upgrade lsn-explorer to check it"))
        return None
    if not {"records", "artifacts"} <= tables:
        report.findings.append(Finding("database", f"{DB_NAME} has no records table (schema {version})", hint))
        return None
    if dangling:
        by_table: dict[str, int] = {}
        for row in dangling:
            by_table[row[0]] = by_table.get(row[0], 0) + 1
        listed = ", ".join(f"{n} rows of {table}" for table, n in sorted(by_table.items()))
        report.findings.append(Finding("database", f"{listed} refer to rows that no longer exist",
                                       "re-run the evaluations they belong to"))
    return int(version)


# -- records, files and jobs ---------------------------------------------------------------------
@dataclass
class _Refs:
    artifacts: dict[str, list[str]] = field(default_factory=dict)  # hash → records that need it
    mentioned: set[str] = field(default_factory=set)  # every sha256-like string of any payload
    adapter_folders: set[Path] = field(default_factory=set)


@dataclass
class _Checker:
    session: Session
    db: sqlite3.Connection  # the session's connection, read-only unless repairing
    report: CheckReport
    probes: Probes
    repair: bool
    grace_s: float
    busy: bool = False  # a job holds its lock: it may be about to record a new artifact

    def found(self, finding: Finding, fix: Callable[[], str] | None = None, blocked: str = "") -> None:
        """Add `finding`; when repairing, apply `fix` unless `blocked` says why not."""
        self.report.findings.append(finding)
        if fix is None or not self.repair:
            return
        if blocked:
            finding.hint = "; ".join(part for part in (blocked, finding.hint) if part)
        else:
            finding.repaired = fix()

    def jobs(self) -> None:
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "jobs" not in tables:  # a schema-1 session checked without --repair
            return
        jobs = self.probes.job_states(self.session)
        self.busy = any(job.state in _ACTIVE for job in jobs)
        for job in jobs:
            if job.state == "interrupted":
                self.found(Finding("job", f"job {job.id} ({job.name}) was interrupted: its row says it runs, but no "
                                   "worker holds its lock", f"continue it with `lsn-explorer jobs resume {job.id} "
                                   f"--session {self.session.name}`",
                                   repair="record it as failed (interrupted); `jobs resume` still continues it"),
                           partial(self.end_job, job))
        self.report.checked["jobs"] = len(jobs)

    def end_job(self, job: Job) -> str:
        # Under the job's own lock, as `jobs.control.start` takes it: a resume cannot start between
        # reading the row and writing it, and one that started first keeps its lock and its row.
        fd = self.probes.take_job_lock(self.session, job.id)
        if fd is None:
            return ""
        try:
            again = self.session.job(job.id)
            if again is None or again.state not in _ACTIVE:
                return ""
            self.session.update_job(job.id, state="failed", ended=now(),
                                    error="interrupted: the worker ended without recording its end "
                                          "(found by session check)")
        finally:
            os.close(fd)
        return f"recorded job {job.id} as failed (interrupted); `jobs resume {job.id}` continues it"

    def records(self) -> _Refs:
        refs = _Refs()
        rows = self.db.execute("SELECT id, kind, name, payload FROM records ORDER BY id").fetchall()
        adapters: dict[Path, tuple[str, str]] = {}
        for record_id, kind, name, text in rows:
            label = f"record #{record_id} ({kind} {name})"
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                self.found(Finding("record", f"{label} has an unreadable payload ({exc.msg})",
                                   "restore session.sqlite from a copy, or recompute the record"))
                continue
            for key, value in _strings(payload):
                if _HASH.fullmatch(value):
                    refs.mentioned.add(value)
                    if key in ARTIFACT_KEYS:
                        refs.artifacts.setdefault(value, []).append(label)
            if kind == "adapter" and isinstance(payload, dict):
                folder = self.adapter_folder(payload, label)
                if folder is not None:
                    refs.adapter_folders.add(folder)
                    adapters.setdefault(folder, (label, str(payload.get("hash", ""))))
        self.report.checked["records"] = len(rows)
        self.artifacts(refs)
        self.adapters(adapters)
        return refs

    def artifacts(self, refs: _Refs) -> None:
        listed = {row[0] for row in self.db.execute("SELECT hash FROM artifacts")}
        redo = "recompute it (the record's command, with a new name or in a new session)"
        for digest, users in refs.artifacts.items():
            path = self.session.folder / ARTIFACTS / f"{digest}.safetensors"
            who = users[0] + (f" and {len(users) - 1} more" if len(users) > 1 else "")
            if not path.is_file():
                self.found(Finding("artifact", f"{path.name}, needed by {who}, is missing",
                                   f"the session folder was copied incompletely: copy the file again, or {redo}"))
            elif _file_hash(path) != digest:
                self.found(Finding("artifact", f"{path.name}, needed by {who}, is corrupted (its content no "
                                   "longer matches its hash)", f"restore it from a copy, or {redo}"))
            elif digest not in listed:
                self.found(Finding("artifact", f"{path.name}, needed by {who}, is not listed in the artifacts "
                                   "table", repair="list it (its content matches its hash)"),
                           partial(self.list_artifact, digest, path))
        self.report.checked["artifacts"] = len(refs.artifacts)

    def adapters(self, adapters: dict[Path, tuple[str, str]]) -> None:
        for folder, (label, digest) in adapters.items():
            where = f"the adapter folder of {label} ({_rel(self.session, folder)})"
            if not (folder / "adapter_config.json").is_file():
                self.found(Finding("adapter", f"{where} is missing or incomplete", "fine-tune the adapter again"))
            elif digest and self.probes.folder_hash(folder) != digest:
                self.found(Finding("adapter", f"{where} has changed since it was stored (hash mismatch)",
                                   "restore it from a copy, or fine-tune the adapter again"))
        self.report.checked["adapters"] = len(adapters)

    def adapter_folder(self, payload: dict[str, Any], label: str) -> Path | None:
        relative = str(payload.get("folder", ""))
        folder = self.session.folder / relative
        if not relative or not folder.resolve().is_relative_to(self.session.folder.resolve()):
            self.found(Finding("adapter", f"{label} names the folder {relative!r}, which is not inside the "
                               "session", "fine-tune the adapter again in this session"))
            return None
        return folder

    def files(self, refs: _Refs) -> None:
        """Files in artifacts/ that no record refers to, and leftovers of interrupted writes."""
        artifacts = self.session.folder / ARTIFACTS
        entries = sorted(artifacts.iterdir()) if artifacts.is_dir() else []
        for path in entries:
            stem = path.name.removesuffix(".safetensors")
            if path.is_file() and path.name.endswith(".safetensors") and _HASH.fullmatch(stem):
                if stem not in refs.mentioned:
                    self.orphan(path, path.name)
            elif path.name.startswith(".tmp-"):
                self.leftover(path)
            elif path.is_dir() and path.name == ADAPTERS:
                for sub in sorted(path.iterdir()):
                    if sub.name.startswith((".staging-", ".tmp-")):
                        self.leftover(sub)
                    elif sub.is_dir() and sub not in refs.adapter_folders:
                        self.orphan(sub, f"adapter folder {sub.name}")
            else:
                self.found(Finding("orphan", f"{ARTIFACTS}/{path.name} is not a file lsn-explorer writes",
                                   "move it out of the session if it is yours", problem=False))
        present = {path.name.removesuffix(".safetensors") for path in artifacts.glob("*.safetensors")}
        for (digest,) in self.db.execute("SELECT hash FROM artifacts ORDER BY hash").fetchall():
            if digest not in present and digest not in refs.mentioned:
                self.found(Finding("artifact", f"the artifacts table lists {digest[:12]}…, whose file is gone and "
                                   "which no record needs", repair="drop the table row"),
                           partial(self.unlist_artifact, digest))

    def orphan(self, path: Path, what: str) -> None:
        self.found(Finding("orphan", f"{what} ({_size(path)}): no record refers to it",
                           f"after --repair, delete {QUARANTINE}/ once you are sure you do not need it",
                           repair=f"move it to {QUARANTINE}/"),
                   partial(self.quarantine, path), self.wait_for(path))

    def leftover(self, path: Path) -> None:
        self.found(Finding("leftover", f"{_rel(self.session, path)} is left over from an interrupted write",
                           repair="delete it (it was never complete)"),
                   partial(_delete, path), self.wait_for(path))

    def wait_for(self, path: Path) -> str:
        """Why an unrecorded file must stay where it is for now ("" when it may be moved)."""
        if self.busy:
            return "left in place: a job is running and may be about to record it"
        if time.time() - path.lstat().st_mtime < self.grace_s:
            return f"left in place: younger than {self.grace_s / 60:g} min, its writer may be about to record it"
        return ""

    def quarantine(self, path: Path) -> str:
        folder = self.session.folder / QUARANTINE
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        if target.exists():
            target = folder / f"{path.name}.{time.time_ns()}"
        shutil.move(str(path), str(target))
        stem = path.name.removesuffix(".safetensors")
        if _HASH.fullmatch(stem):
            self.unlist_artifact(stem)
        return f"moved to {_rel(self.session, target)}"

    def list_artifact(self, digest: str, path: Path) -> str:
        self.db.execute("INSERT OR IGNORE INTO artifacts (hash, file, bytes, created) VALUES (?, ?, ?, ?)",
                        (digest, path.name, path.stat().st_size, now()))
        return "listed in the artifacts table"

    def unlist_artifact(self, digest: str) -> str:
        self.db.execute("DELETE FROM artifacts WHERE hash = ?", (digest,))
        return "dropped the table row"


def _delete(path: Path) -> str:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return "deleted"


# -- helpers -------------------------------------------------------------------------------------
def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) for every string in a JSON value, with the dict key it sits under."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> str:
    total = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return f"{total / 1e6:.1f} MB" if total >= 1e5 else f"{total} bytes"


def _rel(session: Session, path: Path) -> str:
    return str(path.relative_to(session.folder)) if path.is_relative_to(session.folder) else str(path)
