"""The session's evaluation tables: one row per evaluation, one per scored sample (schema 3).

`Session` inherits these methods; they live here so the store module stays about opening,
records, jobs and artifacts. Per-sample rows are keyed by (evaluation, language, row, sample) and
written with INSERT OR IGNORE inside one transaction per batch: a batch is stored whole or not at
all, and a batch retried after a kill -9 cannot duplicate a sample.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from lsn_explorer.errors import LsnError


@dataclass(frozen=True)
class EvalRow:
    """One stored evaluation (its spec is `EvalSpec.to_json()`)."""

    id: int
    name: str
    spec: dict[str, Any]
    provenance: dict[str, Any]
    job: int | None
    created: str
    finished: str | None


_EVAL_COLUMNS = "id, name, spec, provenance, job, created, finished"


class EvalTables:
    """Evaluation storage, mixed into `Session` (which owns `_db`, its sqlite3 connection)."""

    _db: sqlite3.Connection
    name: str

    def add_eval(self, name: str, spec: dict[str, Any], provenance: dict[str, Any], job: int | None = None) -> EvalRow:
        """Store a new evaluation; its name must be new in the session.

        Raises:
            LsnError: the session already has an evaluation of that name.
        """
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            cursor = self._db.execute(
                "INSERT INTO evals (name, spec, provenance, job, created) VALUES (?, ?, ?, ?, ?)",
                (name, json.dumps(spec, ensure_ascii=False), json.dumps(provenance, ensure_ascii=False), job, created))
        except sqlite3.IntegrityError:
            raise LsnError(f"session {self.name!r} already has an evaluation named {name!r}",
                           "pass another --name, or see it with `lsn-explorer eval show --name " + name + "`") from None
        assert cursor.lastrowid is not None  # always set after an INSERT
        return EvalRow(cursor.lastrowid, name, spec, provenance, job, created, None)

    def set_eval(self, eval_id: int, *, job: int | None = None, finished: str | None = None,
                 provenance: dict[str, Any] | None = None) -> None:
        """Link an evaluation to its job, mark it finished (an ISO time), or set its provenance."""
        if provenance is not None:
            self._db.execute("UPDATE evals SET provenance = ? WHERE id = ?",
                             (json.dumps(provenance, ensure_ascii=False), eval_id))
        if job is not None:
            self._db.execute("UPDATE evals SET job = ? WHERE id = ?", (job, eval_id))
        if finished is not None:
            self._db.execute("UPDATE evals SET finished = ? WHERE id = ?", (finished, eval_id))

    def evals(self) -> list[EvalRow]:
        """Every evaluation of the session, oldest first."""
        return [_eval(row) for row in self._db.execute(f"SELECT {_EVAL_COLUMNS} FROM evals ORDER BY id")]

    def eval_named(self, name: str) -> EvalRow | None:
        row = self._db.execute(f"SELECT {_EVAL_COLUMNS} FROM evals WHERE name = ?", (name,)).fetchone()
        return _eval(row) if row else None

    def put_samples(self, eval_id: int, results: Sequence[dict[str, Any]]) -> int:
        """Store a batch of per-sample results (dicts with the fields of core's `SampleResult`:
        lang, row, sample, example_id, values, prediction, extra) in one transaction; returns how
        many were new."""
        rows = [(eval_id, r["lang"], r["row"], r["sample"], r["example_id"], r["prediction"],
                 json.dumps(r["values"]), json.dumps(r["extra"], ensure_ascii=False)) for r in results]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO eval_samples (eval, lang, row, sample, example_id, prediction, sample_values, "
                "extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            added = self._db.total_changes - before
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return added

    def samples(self, eval_id: int) -> list[dict[str, Any]]:
        """Every stored per-sample result of an evaluation (dicts as `put_samples` takes them),
        by language, row and sample."""
        cursor = self._db.execute(
            "SELECT lang, row, sample, example_id, sample_values, prediction, extra FROM eval_samples "
            "WHERE eval = ? ORDER BY lang, row, sample", (eval_id,))
        return [{"lang": lang, "row": row, "sample": sample, "example_id": example_id, "values": json.loads(values),
                 "prediction": prediction, "extra": json.loads(extra)}
                for lang, row, sample, example_id, values, prediction, extra in cursor]

    def stored_samples(self, eval_id: int) -> dict[tuple[str, str], set[int]]:
        """(language, row) → the sample indices already stored (what a resumed run skips)."""
        done: dict[tuple[str, str], set[int]] = {}
        for lang, row, sample in self._db.execute("SELECT lang, row, sample FROM eval_samples WHERE eval = ?",
                                                  (eval_id,)):
            done.setdefault((lang, row), set()).add(sample)
        return done


def _eval(row: tuple[Any, ...]) -> EvalRow:
    return EvalRow(row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4], row[5], row[6])
