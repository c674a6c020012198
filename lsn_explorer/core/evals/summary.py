"""From per-sample results to table cells: a score per (language, row), its bootstrap CI, and the
paired Δ against the un-intervened row. Torch-free; numpy only. Rendering lives in `tables.py`.

The CIs are percentile bootstraps (resample the cell's samples with replacement, recompute the
metric, take the central `confidence` quantiles). Δ's CI is paired: every resample draws the same
sample indices for the row and for "none", so the sample-to-sample variance both rows share (an
easy question is easy with or without an intervention) cancels and the CI is as narrow as the data
allow. Each cell's generator is seeded from `seed` and a CRC32 of (lang, row), never Python's
salted `hash()`, so a cell's CI does not depend on the order cells or samples arrive in.

Cells by kind: "none", "grid" and "intervene" are one row each. A random-neuron baseline row
(`RowInfo.kind == "random"`, one per seed) gives a cell of kind "random_seed"; in addition the K
seeds matched to one base row are folded into one cell of kind "random", row key `random:<base>`,
whose per-sample values are the seeds' mean; that is the baseline the papers' tables show.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from lsn_explorer.core.evals.results import MAIN_METRIC, SAMPLE_VALUES, RowInfo, SampleResult
from lsn_explorer.errors import LsnError

CellKind = Literal["none", "grid", "intervene", "random", "random_seed"]

# MKQA "answered" subset: Tezuka et al. report F1 over the questions the un-intervened model
# already answers (F1 ≥ 50), so a drop there is damage, not noise on questions it never knew.
ANSWERED_F1 = 50.0

# Resample blocks hold at most this many drawn indices, so 1,000 resamples of a 100k-line
# perplexity split do not allocate gigabytes at once.
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Cell:
    """One table cell: a row's score in one language, with its CI and its Δ against "none".

    `low`/`high` bound the percentile bootstrap CI of `score`; `delta_low`/`delta_high` the paired
    bootstrap CI of `delta` (None when the language has no "none" row, or for "none" itself).
    `n` counts the cell's samples. `extra` holds the task's other metrics as point values (xquad:
    em, token_f1, token_em; mkqa: em, f1_answered50, n_answered50; ppl: tokens; aggregated random
    cells also `seeds`). `base`/`seed` are set on random cells as on their `RowInfo`.
    """

    lang: str
    row: str
    kind: CellKind
    value: str | None
    set_name: str | None
    metric: str
    score: float
    low: float
    high: float
    n: int
    delta: float | None = None
    delta_low: float | None = None
    delta_high: float | None = None
    extra: dict[str, float | int | None] = field(default_factory=dict)
    base: str | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class _Series:
    """One cell's samples: `ids` Int[n] ascending sample indices, `values` name → Float[n]."""

    ids: np.ndarray
    values: dict[str, np.ndarray]

    def subset(self, ids: np.ndarray) -> _Series:
        keep = np.isin(self.ids, ids)
        return _Series(self.ids[keep], {k: v[keep] for k, v in self.values.items()})


def summarize(task: str, rows: list[RowInfo], samples: list[SampleResult], *, seed: int = 0,
              resamples: int = 1000, confidence: float = 0.95) -> list[Cell]:
    """Aggregate per-sample results into cells with bootstrap CIs and paired Δs against "none".

    Args:
        task: xnli | xquad | mkqa | ppl (picks `MAIN_METRIC[task]` and how it aggregates).
        rows: the evaluation's rows; every sample's `row` must be one of their keys.
        samples: per-sample results, any order. A repeated (lang, row, sample) keeps the last one.
        seed: seeds the bootstrap (with a CRC32 of each cell's lang and row).
        resamples: bootstrap resamples per CI.
        confidence: the CIs' central coverage, e.g. 0.95.

    Returns:
        Cells per language (in order of first appearance): one per row in `rows` order (random
        rows as kind "random_seed"), then one aggregated "random" cell per base row. Empty when
        there are no samples.

    Raises:
        LsnError: an unknown task, a sample for a row not in `rows`, or bad bootstrap settings.
    """
    if task not in MAIN_METRIC:
        raise LsnError(f"unknown task {task!r}", f"one of: {', '.join(MAIN_METRIC)}")
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise LsnError(f"bad bootstrap settings: resamples={resamples}, confidence={confidence}",
                       "use at least 1 resample and a confidence between 0 and 1")
    by_key = {r.key: r for r in rows}
    grouped: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    langs: list[str] = []
    for s in samples:
        if s.row not in by_key:
            raise LsnError(f"results for row {s.row!r}, which the evaluation does not list",
                           "the results file does not match its rows; rerun the evaluation")
        if s.lang not in langs:
            langs.append(s.lang)
        grouped.setdefault((s.lang, s.row), {})[s.sample] = s.values
    names = SAMPLE_VALUES[task]
    series = {k: _series(v, names) for k, v in grouped.items()}
    boot = _Bootstrap(task, seed, resamples, confidence)
    cells: list[Cell] = []
    for lang in langs:
        none_key = next((r.key for r in rows if r.kind == "none" and (lang, r.key) in series), None)
        none = series[(lang, none_key)] if none_key else None
        for r in rows:
            if (lang, r.key) in series:
                kind: CellKind = "random_seed" if r.kind == "random" else r.kind
                cells.append(boot.cell(lang, r.key, kind, r, series[(lang, r.key)], none))
        for base, seeds in _random_groups(rows).items():
            present = [series[(lang, r.key)] for r in seeds if (lang, r.key) in series]
            merged = _mean_over_seeds(present) if present else None
            if merged is not None and len(merged.ids):  # seeds without a sample in common give no cell
                cells.append(boot.cell(lang, f"random:{base}", "random", seeds[0], merged, none, seeds=len(present)))
    return cells


class _Bootstrap:
    """Scores one cell and its CIs; holds the settings every cell of a summary shares."""

    def __init__(self, task: str, seed: int, resamples: int, confidence: float) -> None:
        self.task, self.seed, self.resamples = task, seed, resamples
        self.metric = MAIN_METRIC[task]
        self.quantiles = (100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2)

    def cell(self, lang: str, row: str, kind: CellKind, info: RowInfo, data: _Series, none: _Series | None,
             seeds: int | None = None) -> Cell:
        stat = _statistic(self.task)
        score = float(stat(data.values, None)[0])
        low, high = self._ci(lang, row, "score", len(data.ids), lambda idx: stat(data.values, idx))
        delta = delta_low = delta_high = None
        if none is not None and kind != "none":
            delta = score - float(stat(none.values, None)[0])
            common = np.intersect1d(data.ids, none.ids)
            if len(common):
                a, b = data.subset(common).values, none.subset(common).values
                delta_low, delta_high = self._ci(lang, row, "delta", len(common), lambda idx: stat(a, idx) - stat(b, idx))
        extra = self._extra(data, none)
        if seeds is not None:
            extra["seeds"] = seeds
        return Cell(lang, row, kind, info.value, info.set_name, self.metric, score, low, high, len(data.ids),
                    delta, delta_low, delta_high, extra, info.base, None if kind == "random" else info.seed)

    def _ci(self, lang: str, row: str, what: str, n: int, stat: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
        """Percentile CI of `stat` over resampled index matrices Int[resample, n], drawn in blocks."""
        rng = np.random.default_rng([self.seed, zlib.crc32(f"{what}\x1f{lang}\x1f{row}".encode())])
        block = max(1, _BLOCK_ELEMENTS // n)
        stats = [stat(rng.integers(0, n, size=(min(block, self.resamples - start), n)))
                 for start in range(0, self.resamples, block)]
        low, high = np.percentile(np.concatenate(stats), self.quantiles)
        return float(low), float(high)

    def _extra(self, data: _Series, none: _Series | None) -> dict[str, float | int | None]:
        extra: dict[str, float | int | None] = {}
        if self.task == "ppl":
            extra["tokens"] = float(data.values["tokens"].sum())
            return extra
        for name in SAMPLE_VALUES[self.task]:
            if name != self.metric:
                extra[name] = float(data.values[name].mean())
        if self.task == "mkqa" and none is not None:
            answered = none.ids[none.values["f1"] >= ANSWERED_F1]
            f1 = data.subset(answered).values["f1"]
            extra["f1_answered50"] = float(f1.mean()) if len(f1) else None
            extra["n_answered50"] = len(f1)
        return extra


def _statistic(task: str) -> Callable[[dict[str, np.ndarray], np.ndarray | None], np.ndarray]:
    """The cell metric over each resample: Float[resample] from index matrix Int[resample, n].

    With `idx=None` it returns the point estimate over all samples as a length-1 array.
    """
    metric = MAIN_METRIC[task]

    def take(values: dict[str, np.ndarray], name: str, idx: np.ndarray | None) -> np.ndarray:
        v = values[name]
        return v[None, :] if idx is None else v[idx]

    if metric == "perplexity":
        # Corpus perplexity weights lines by their length: exp(Σ nll / Σ tokens), not a mean of ratios.
        return lambda values, idx: np.exp(take(values, "nll", idx).sum(1) / take(values, "tokens", idx).sum(1))
    return lambda values, idx: take(values, metric, idx).mean(1)


def _series(by_sample: dict[int, dict[str, float]], names: Iterable[str]) -> _Series:
    ids = np.array(sorted(by_sample), dtype=np.int64)
    return _Series(ids, {n: np.array([by_sample[i][n] for i in ids.tolist()], dtype=np.float64) for n in names})


def _random_groups(rows: list[RowInfo]) -> dict[str, list[RowInfo]]:
    """Random rows by the row they are matched to, bases in first-appearance order."""
    groups: dict[str, list[RowInfo]] = {}
    for r in rows:
        if r.kind == "random" and r.base is not None:
            groups.setdefault(r.base, []).append(r)
    return groups


def _mean_over_seeds(seeds: list[_Series]) -> _Series:
    """Per sample, every value averaged over the seeds, on the samples all seeds have.

    Averaging nll and tokens gives the same perplexity as summing them (the 1/K cancels in
    Σ nll / Σ tokens) and keeps `tokens` the split's real count.
    """
    common = seeds[0].ids
    for s in seeds[1:]:
        common = np.intersect1d(common, s.ids)
    parts = [s.subset(common) for s in seeds]
    return _Series(common, {k: np.mean([p.values[k] for p in parts], axis=0) for k in parts[0].values})
