"""Exporting a session to plain files: JSON for everything, CSV for tables.

Writes `records.json` (every record with payload and provenance), `records.csv` (one line per
record), `neuron_sets/<name>.json|.csv` (lang, layer, index, score) and `stats/<lang>-<site>-<mode>.csv`
(one row per neuron with every statistic).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lsn_explorer.session.store import Session


def export_session(session: Session, out: str | Path) -> list[Path]:
    """Write the session's records and tables under `out`; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = session.records()
    written = [out / "records.json", out / "records.csv"]
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
        json_path, csv_path = out / "neuron_sets" / f"{name}.json", out / "neuron_sets" / f"{name}.csv"
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
        path = out / "stats" / f"{lang}-{site}-{mode}.csv"
        columns = [values[n].reshape(-1).tolist() for n in names]
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["layer", "index", *names])
            for flat, row in enumerate(zip(*columns)):
                writer.writerow([flat // d_ff, flat % d_ff, *(f"{v:.6g}" for v in row)])
        written.append(path)
    return written
