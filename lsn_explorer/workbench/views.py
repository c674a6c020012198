"""What front ends show, as plain data built from records and core results: language rows,
neuron-set summaries, one neuron's profile, history entries, and the method parameters a user
edits as `key=value` text. No Textual, no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lsn_explorer.core.neurons.methods import METHODS, editable_defaults
from lsn_explorer.errors import LsnError
from lsn_explorer.session.store import Record

# Each method's editable parameters and defaults, from the one registry (core/neurons/methods.py).
METHOD_PARAMS: dict[str, dict[str, Any]] = {method: editable_defaults(method) for method in METHODS}
HISTORY_KINDS: tuple[str, ...] = ("generation", "score")


@dataclass(frozen=True)
class LanguageRow:
    code: str
    name: str
    script: str
    has_corpus: bool
    stats_tokens: int | None  # tokens in the newest statistics, None when there are none


@dataclass(frozen=True)
class NeuronSetSummary:
    """What the neurons panel shows for one stored set."""

    name: str
    record: int
    method: str
    params: dict[str, Any]
    n_layers: int
    counts: dict[str, int]
    per_layer: dict[str, list[int]]  # lang → count per layer
    overlap_langs: list[str]
    overlap: list[list[float]]  # Jaccard, rows/cols = overlap_langs


@dataclass(frozen=True)
class NeuronProfile:
    """One neuron's statistics in every language with statistics."""

    layer: int
    neuron: int
    site: str
    columns: list[str]  # prob, mean, p5 … p95
    rows: dict[str, list[float]]  # lang → values in `columns` order
    member_of: list[str]  # "set·lang" entries that contain this neuron


@dataclass(frozen=True)
class HistoryEntry:
    record: int
    kind: str  # generation | score
    created: str
    title: str  # prompt or task/lang/sample
    rows: list[str]  # one line per row: label and result
    request: dict[str, Any]  # what re-running it needs: prompt + settings, or task/lang/sample


def parse_neuron(text: str) -> tuple[int, int]:
    layer, dot, neuron = text.strip().partition(".")
    if not dot or not layer.isdigit() or not neuron.isdigit():
        raise LsnError(f"{text.strip() or 'nothing'} is not a neuron", "type LAYER.INDEX, e.g. 3.17")
    return int(layer), int(neuron)


def shown_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The editable parameters a set was made with (plus its statistics site), not derived ones."""
    keys = [*METHOD_PARAMS.get(method, {}), "site"]
    return {k: params[k] for k in keys if k in params}


def history_entry(record: Record) -> HistoryEntry:
    payload = record.payload
    if record.kind == "generation":
        title = payload["prompt"].replace("\n", " ")
        rows = [f"{row['label']}: {row['text']}".replace("\n", " ") for row in payload["rows"]]
        request = {k: payload[k] for k in ("prompt", "max_new_tokens", "temperature", "seed")}
    else:
        title = f"{payload['task']} {payload['lang']} #{payload['sample']}"
        rows = [f"{row['label']}: {_score_line(row)}" for row in payload["rows"]]
        request = {k: payload[k] for k in ("task", "lang", "sample")}
    return HistoryEntry(record.id, record.kind, record.created, title, rows, request)


def _score_line(row: dict[str, Any]) -> str:
    if row.get("probabilities"):
        probs = " ".join(f"{p:.2f}" for p in row["probabilities"])
        return f"{row['prediction']} ({'right' if row['correct'] else 'wrong'}; p = {probs})"
    if row.get("f1") is not None:
        return f"{row['prediction']!r} EM {row['exact_match']:.0f} F1 {row['f1']:.2f}"
    return f"PPL {row['perplexity']:.1f}"


def parse_params(method: str, text: str) -> dict[str, Any]:
    """`key=value key=value` → parameters of `method`, checked against the method registry."""
    from lsn_explorer.core.neurons.methods import check_params

    defaults = METHOD_PARAMS.get(method)
    if defaults is None:
        raise LsnError(f"unknown method {method!r}", f"methods: {', '.join(METHOD_PARAMS)}")
    params: dict[str, Any] = {}
    # Items are separated by spaces, or by commas before the next key (`layers=1-4,7` keeps its comma).
    for item in filter(None, re.split(r"\s+|,(?=\s*[A-Za-z_]\w*=)", text.strip().rstrip(","))):
        key, eq, value = item.strip(",").partition("=")
        if not eq or key not in defaults:
            raise LsnError(f"bad parameter {item!r} for {method}",
                           f"write key=value with keys {', '.join(defaults)}")
        params[key] = value
    return check_params(method, params)


def format_params(method: str) -> str:
    return " ".join(f"{k}={v}" for k, v in METHOD_PARAMS[method].items() if v is not None)
