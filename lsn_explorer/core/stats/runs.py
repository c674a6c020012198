"""Statistics runs: per-language collection recorded in a session, resumable and shardable.

`compute_stats` collects one language at a time and stores each finished language at once, so an
interrupted run resumes where it stopped: a language whose record matches the run's settings
(model, corpus file hash, site, mode, window, batch, token cap, bins) is not recomputed.
With `shard=(i, n)` the raw accumulator is stored instead ("stats_shard"); `merge_shards` adds the
n shards of a language into the same record a single pass would have written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch

from lsn_explorer.core.data.corpora import read_lines
from lsn_explorer.core.model.loading import model_context
from lsn_explorer.core.progress import Cancel, Progress
from lsn_explorer.core.specs import Spec, one_of
from lsn_explorer.core.stats.accumulator import HistogramGrid, StatsAccumulator
from lsn_explorer.core.stats.collect import FAITHFUL_BATCH, FAITHFUL_WINDOW, collect_stats, plan_batches
from lsn_explorer.core.vocab import MODES, SITES, Mode
from lsn_explorer.errors import CorpusError, LsnError, StatsMissing
from lsn_explorer.session.provenance import file_sha256, provenance

if TYPE_CHECKING:
    from lsn_explorer.core.distributed import Ranks
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session

DEFAULT_WINDOW, DEFAULT_BATCH = 512, 4


class StatsMismatch(LsnError):
    """Statistics of different models, precisions, sites or modes would be mixed."""


# What must agree between statistics that are compared or combined: a LAPE set from nf4 and fp32
# statistics (or from two checkpoints) is not a result of either.
IDENTITY_MODEL_KEYS = ("source", "fingerprint", "revision", "quantization", "dtype")


def stats_identity(model: dict[str, Any] | None, site: str, mode: str) -> dict[str, Any]:
    """The part of a stats record that must agree with the others it is used with."""
    model = model or {}
    return {**{k: model.get(k) for k in IDENTITY_MODEL_KEYS}, "site": site, "mode": mode}


def identity_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """`quantization nf4 vs None`-style lines for every key where two identities differ.

    A hub revision missing on one side is unknown, not different: records written before the
    revision was read from the hub cache (transformers 5 dropped the config's `_commit_hash`)
    have none, and refusing them would strand every older session of a hub model."""
    shown = {"fingerprint": "checkpoint files", "revision": "revision"}
    unknown = {"revision"} if a.get("revision") is None or b.get("revision") is None else set()
    return [f"{shown.get(k, k)} {a.get(k) if k not in shown else str(a.get(k))[:12]} vs "
            f"{b.get(k) if k not in shown else str(b.get(k))[:12]}" for k in a if a.get(k) != b.get(k) and k not in unknown]


@dataclass(frozen=True)
class ActivationStats:
    """Finalized statistics of one language: name → [n_layers, d_ff] (see stats.STAT_NAMES)."""

    lang: str
    site: str
    mode: str
    tokens: int
    values: dict[str, torch.Tensor]
    corpus: dict[str, Any] | None = None  # the stats record's corpus provenance
    record: int | None = None
    identity: dict[str, Any] | None = None  # model, precision, site, mode (`stats_identity`)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.values["prob"].shape)  # type: ignore[return-value]


@dataclass(frozen=True)
class StatsSettings(Spec):
    """How statistics are collected; persisted (flat) in every stats record and its run key."""

    KIND: ClassVar[str] = "stats_settings"
    site: str = "s"
    mode: Mode = "consistent"
    window: int | None = None  # None: min(512, the model's context)
    batch_size: int = DEFAULT_BATCH
    max_tokens: int | None = None
    bins: int = 1024

    def __post_init__(self) -> None:
        # Checked at construction, before any model work: a bad value must not be silently
        # replaced by a default (a window of 0 used to become 512) or ignored (a negative cap).
        for name, value, low in (("window", self.window, 1), ("batch_size", self.batch_size, 1),
                                 ("max_tokens", self.max_tokens, 1), ("bins", self.bins, HistogramGrid.CELLS)):
            if value is not None and (not isinstance(value, int) or value < low):
                flag = {"max_tokens": "--tokens", "batch_size": "--batch-size"}.get(name, f"--{name}")
                raise LsnError(f"{name} {value} is out of range: it must be a whole number ≥ {low}",
                               f"e.g. {flag} {({'window': 512, 'batch_size': 4, 'max_tokens': 20000, 'bins': 1024})[name]}")
        one_of("site", self.site, SITES)
        one_of("statistics mode", self.mode, MODES)

    def resolved(self, handle: ModelHandle) -> "StatsSettings":
        """Fill in defaults and apply the faithful mode's fixed choices (g, 4 × 512)."""
        context = model_context(handle)
        window, batch, site = self.window, self.batch_size, self.site
        if self.mode == "faithful":
            site, window, batch = "g", window or FAITHFUL_WINDOW, FAITHFUL_BATCH
        window = window if window is not None else DEFAULT_WINDOW
        if context is not None and window > context:
            if self.window is not None:
                raise LsnError(f"window {window} is longer than the model's context ({context} tokens)",
                               f"use --window {context} or less")
            window = context
        handle.arch.check_site(site)
        return StatsSettings(site, self.mode, window, batch, self.max_tokens, self.bins)


def _run_key(handle: ModelHandle, corpus: Path, settings: StatsSettings, shard: tuple[int, int] | None) -> str:
    # The fields only (no kind/version), so records written by wave 1 still match and resume.
    data = {"model": handle.provenance(), "corpus": file_sha256(corpus), "settings": settings.__dict__,
            "shard_count": shard[1] if shard else 1}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def compute_stats(
    session: Session,
    handle: ModelHandle,
    corpora: dict[str, Path],
    settings: StatsSettings = StatsSettings(),
    *,
    shard: tuple[int, int] | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    warn: Callable[[str], None] | None = None,
    allow_mixed: bool = False,
    ranks: Ranks | None = None,
) -> list[dict[str, Any]]:
    """Collect statistics for each language in `corpora` (lang → text file) into `session`.

    Returns one summary per language: lang, tokens, skipped (already in the session) and the
    record id. Languages finished before a failure or cancel stay stored. Statistics of another
    model, revision, dtype or quantisation than those already in the session are refused
    (`StatsMismatch`) unless `allow_mixed`; other sites and modes sit side by side.

    With `ranks` (a torchrun run), each rank accumulates the batches of its shard; rank 0 merges
    the ranks' accumulators in rank order — exactly what `merge_shards` does with shard records —
    and alone writes the record, which is the single-process record (same key, same values).
    """
    settings = settings.resolved(handle)
    if not allow_mixed:
        check_same_model(session, handle)
    kind = "stats_shard" if shard else "stats"
    if ranks is not None:
        shard = None  # the ranks' shards are merged before anything is written
    summaries = []
    for lang, path in corpora.items():
        key = _run_key(handle, path, settings, shard)
        existing = [r for r in session.records(kind, lang) if r.payload.get("key") == key
                    and (shard is None or r.payload.get("shard") == list(shard))]
        if existing:
            summaries.append({"lang": lang, "tokens": existing[-1].payload["tokens"], "skipped": True,
                              "record": existing[-1].id})
            continue
        lines = read_lines(path)
        assert settings.window is not None  # `resolved` filled it in
        plan = plan_batches(handle, lines, window=settings.window, batch_size=settings.batch_size,
                            max_tokens=settings.max_tokens)
        if plan.short and warn is not None:
            warn(f"{lang}: the corpus has only {plan.total_tokens} tokens, shorter than one window of "
                 f"{settings.window}; using what there is")
        if shard is not None and shard[0] >= len(plan.batches):
            raise CorpusError(f"{lang}: shard {shard[0]}/{shard[1]} gets no batch ({len(plan.batches)} batches)",
                              "use fewer shards for this corpus")
        if ranks is not None and ranks.world > len(plan.batches):  # every rank sees this: all stop alike
            raise CorpusError(f"{lang}: {ranks.world} processes but only {len(plan.batches)} batches",
                              "start fewer processes (--nproc-per-node), or use smaller --batch-size / --window")
        own_shard = (ranks.rank, ranks.world) if ranks is not None else shard or (0, 1)
        acc = collect_stats(handle, plan, site=settings.site, mode=settings.mode,  # type: ignore[arg-type]
                            shard=own_shard, bins=settings.bins, progress=progress, label=lang,
                            cancel=cancel)
        if ranks is not None:
            merged = _merge_ranks(ranks, acc)
            if merged is None:  # not rank 0: its share is delivered, rank 0 records
                summaries.append({"lang": lang, "tokens": acc.tokens, "skipped": False, "record": None})
                continue
            acc = merged
        corpus_spec = {"lang": lang, "file": str(path), "sha256": file_sha256(path), "tokens": plan.total_tokens}
        prov = provenance(model=handle.provenance(), corpus=corpus_spec, method=f"stats/{settings.mode}",
                          params=settings.to_json())
        payload: dict[str, Any] = {"lang": lang, "key": key, **settings.__dict__}
        if ranks is not None:
            payload["ranks"] = ranks.world
        if shard is not None:
            payload |= {"shard": list(shard), "tokens": acc.tokens, "batches": acc.batches,
                        "accumulator": session.put_tensors(acc.state())}
        else:
            payload |= _finalized(session, acc, settings.mode)
        record = session.add(kind, lang, payload, prov)
        summaries.append({"lang": lang, "tokens": acc.tokens, "skipped": False, "record": record.id})
    return summaries


def _merge_ranks(ranks: Ranks, acc: StatsAccumulator) -> StatsAccumulator | None:
    """Rank 0: every rank's accumulator merged in rank order; other ranks: None."""
    from lsn_explorer.core.distributed import gather_tensors

    states = gather_tensors(ranks, acc.state())
    if states is None:
        return None
    merged = StatsAccumulator.from_state(states[0])
    for state in states[1:]:
        merged.merge(StatsAccumulator.from_state(state))
    return merged


def check_same_model(session: Session, handle: ModelHandle) -> None:
    """Refuse statistics of this model when the session holds some of a different one."""
    mine = stats_identity(handle.provenance(), "", "")
    for record in session.records("stats") + session.records("stats_shard"):
        theirs = stats_identity(record.provenance.get("model"), "", "")
        differences = identity_differences(theirs, mine)
        if differences:
            raise StatsMismatch(f"the session already has statistics of another model setting "
                                f"({record.name}, record {record.id}: {'; '.join(differences)})",
                                "use a new session for this model, or pass --allow-mixed to keep both")


def _finalized(session: Session, acc: StatsAccumulator, mode: str) -> dict[str, Any]:
    values = acc.finalize(mode)  # type: ignore[arg-type]
    # Mean square too: with counts and means it gives η² across languages without the raw data.
    values["sqmean"] = (acc.sumsq / max(acc.tokens, 1)).float().cpu()
    return {"tokens": acc.tokens, "batches": acc.batches, "artifact": session.put_tensors(values)}


def merge_shards(session: Session, langs: list[str] | None = None) -> list[dict[str, Any]]:
    """Merge complete sets of shard records into "stats" records (one per language and key)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for record in session.records("stats_shard"):
        if langs is None or record.name in langs:
            groups.setdefault((record.name, record.payload["key"]), []).append(record)
    if not groups:
        raise StatsMissing("the session has no shard records to merge",
                           "run `lsn-explorer stats --shard i/n` for every i first")
    merged = []
    for (lang, key), records in groups.items():
        count = records[0].payload["shard"][1]
        by_index = {r.payload["shard"][0]: r for r in records}
        missing = sorted(set(range(count)) - set(by_index))
        if missing:
            raise StatsMissing(f"{lang}: shards {missing} of {count} are missing",
                               f"run `lsn-explorer stats --shard {missing[0]}/{count}` for them")
        acc = StatsAccumulator.from_state(session.get_tensors(by_index[0].payload["accumulator"]))
        for index in range(1, count):
            acc.merge(StatsAccumulator.from_state(session.get_tensors(by_index[index].payload["accumulator"])))
        first = by_index[0]
        payload = {k: v for k, v in first.payload.items() if k not in ("shard", "accumulator", "tokens", "batches")}
        payload |= _finalized(session, acc, payload["mode"]) | {"merged_from": [by_index[i].id for i in range(count)]}
        record = session.add("stats", lang, payload, first.provenance | {"method": first.provenance["method"] + "+merge"})
        merged.append({"lang": lang, "tokens": acc.tokens, "record": record.id})
    return merged


def load_stats(session: Session, lang: str, *, site: str | None = None, mode: str | None = None) -> ActivationStats:
    """The newest finalized statistics of `lang` in the session (optionally of a site/mode)."""
    candidates = [r for r in session.records("stats", lang)
                  if (site is None or r.payload["site"] == site) and (mode is None or r.payload["mode"] == mode)]
    if not candidates:
        what = " ".join(filter(None, [lang, f"site {site}" if site else "", mode or ""]))
        raise StatsMissing(f"session {session.name!r} has no activation statistics for {what}",
                           f"run `lsn-explorer stats --session {session.name} --langs {lang}` first")
    record = candidates[-1]
    values = session.get_tensors(record.payload["artifact"])
    return ActivationStats(lang, record.payload["site"], record.payload["mode"], record.payload["tokens"], values,
                           record.provenance.get("corpus"), record.id,
                           stats_identity(record.provenance.get("model"), record.payload["site"],
                                          record.payload["mode"]))
