"""Exporting a session to plain files: JSON for everything, CSV for tables.

Writes `records.json` (every record with payload and provenance), `records.csv` (one line per
record), `neuron_sets/<name>.json|.csv` (lang, layer, index, score) and `stats/<lang>-<site>-<mode>.csv`
(one row per neuron with every statistic).

File names come from record names, which users type: every one goes through `file_stem`, and
every path is checked to lie inside `out`, so no record name writes outside the export folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

from lsn_explorer.session.store import Session, SessionError

_SAFE_STEM = re.compile(r"[^\W_][\w.-]{0,99}")


def file_stem(name: str) -> str:
    """`name` as a file name of its own: unchanged when it is plain (letters, digits, `_-.`, not
    hidden), else its unsafe characters replaced by `_` and a short hash of the name appended, so
    that two names that differ only there (`a/b`, `a_b`) still get two files."""
    if _SAFE_STEM.fullmatch(name):
        return name
    plain = re.sub(r"[^\w.-]", "_", name).lstrip("._-")[:80]
    return f"{plain or 'record'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _inside(out: Path, path: Path) -> Path:
    """`path`, refused unless it resolves inside `out` (a symlinked sub-folder could lead away)."""
    if not path.resolve().is_relative_to(out.resolve()):
        raise SessionError(f"export would write {path} outside {out}",
                           "remove the link or file that leads out of the export folder")
    return path


def export_session(session: Session, out: str | Path) -> list[Path]:
    """Write the session's records and tables under `out`; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = session.records()
    written = [_inside(out, out / "records.json"), _inside(out, out / "records.csv")]
    written[0].write_text(json.dumps([r.__dict__ for r in records], ensure_ascii=False, indent=1), encoding="utf-8")
    with written[1].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "kind", "name", "created", "method", "model"])
        for r in records:
            model = (r.provenance.get("model") or {}).get("source", "")
            writer.writerow([r.id, r.kind, r.name, r.created, r.provenance.get("method", ""), model])
    latest_sets = {r.name: r for r in records if r.kind == "neuron_set"}
    if latest_sets:
        (out / "neuron_sets").mkdir(exist_ok=True)
    for name, record in latest_sets.items():
        data = record.payload["set"]
        stem = file_stem(name)
        json_path = _inside(out, out / "neuron_sets" / f"{stem}.json")
        csv_path = _inside(out, out / "neuron_sets" / f"{stem}.csv")
        json_path.write_text(json.dumps(data), encoding="utf-8")
        with csv_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["lang", "layer", "index", "score"])
            for lang, pairs in data["neurons"].items():
                scores = data.get("scores", {}).get(lang) or [""] * len(pairs)
                for (layer, index), score in zip(pairs, scores):
                    writer.writerow([lang, layer, index, score])
        written += [json_path, csv_path]
    latest_stats = {(r.name, r.payload["site"], r.payload["mode"]): r for r in records if r.kind == "stats"}
    if latest_stats:
        (out / "stats").mkdir(exist_ok=True)
    for (lang, site, mode), record in latest_stats.items():
        values = session.get_tensors(record.payload["artifact"])
        names = sorted(values)
        n_layers, d_ff = values[names[0]].shape
        path = _inside(out, out / "stats" / f"{file_stem(f'{lang}-{site}-{mode}')}.csv")
        columns = [values[n].reshape(-1).tolist() for n in names]
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["layer", "index", *names])
            for flat, row in enumerate(zip(*columns)):
                writer.writerow([flat // d_ff, flat % d_ff, *(f"{v:.6g}" for v in row)])
        written.append(path)
    return written
