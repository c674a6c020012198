"""The five latent-space analyses of Tezuka & Inoue on one model (SCIENCE.md §9), as plain data.

`load_texts` reads parallel text (the demo corpus, FLORES, Tatoeba pairs), `gather` computes or
loads the last-token states of every language under every condition (`conditions`), and
`analyse` turns them into one analysis's result: a JSON-ready dict, the same for the CLI, the
app and the figures. Depth 0 is the embedding output, depth l the output of decoder layer l.

- centroids: cosine between the English and each language's centroid per depth, and the full
  language × language matrix at one depth;
- pca: every language's states at one depth projected on the first two principal axes of all of
  them together;
- cevr: components needed for 90 / 95 / 99 % of the (uncentred) variance, per depth and language;
- mknn: mutual k-NN alignment of parallel English and L2 states, per depth;
- parallel: mean cosine of parallel vs non-parallel English–L2 pairs per depth, and the gap; with
  interventions, how much each condition shrinks the gap (Tezuka & Inoue, Fig. 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from lsn_explorer.core.latent import measures
from lsn_explorer.core.latent.conditions import Condition, Planner
from lsn_explorer.core.latent.states import cached_states
from lsn_explorer.core.progress import Cancel, Progress
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session

ANALYSES: tuple[str, ...] = ("centroids", "pca", "cevr", "mknn", "parallel")
DEFAULT_LINES = 1000
DEFAULT_K = 10
CSV_FIELDS = ("analysis", "condition", "lang", "depth", "sentence", "measure", "value")


@dataclass(frozen=True)
class Texts:
    """Line-aligned text per language. `pairs[L2]` are the English lines aligned with `lines[L2]`
    (the same as `lines["en"]` in a multi-parallel corpus; their own in a Tatoeba pair file)."""

    lines: dict[str, list[str]]
    pairs: dict[str, list[str]]
    source: str

    @property
    def languages(self) -> list[str]:
        return list(self.lines)


def load_texts(langs: Sequence[str], corpus: str | Path | None = None, lines: int | None = DEFAULT_LINES) -> Texts:
    """English plus `langs` from a parallel corpus folder (default: the demo corpus), the first
    `lines` aligned lines of each.

    Raises:
        CorpusError: a language without parallel text, or files with different line counts.
        LsnError: no language besides English, or fewer than two lines.
    """
    from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR
    from lsn_explorer.core.neurons.runs import parallel_pair

    if lines is not None and lines < 2:
        raise LsnError(f"--lines {lines} is too few to compare anything", "give at least 2, e.g. --lines 200")
    others = [lang for lang in dict.fromkeys(langs) if lang != "en"]
    if not others:
        raise LsnError("the analyses compare English with other languages, and only English was given",
                       "pass --langs with at least one more language, e.g. en,ja,zh")
    folder = Path(corpus) if corpus else DEMO_CORPUS_DIR
    texts: dict[str, list[str]] = {}
    pairs: dict[str, list[str]] = {}
    for lang in others:
        en, l2 = parallel_pair(lang, folder)
        pairs[lang], texts[lang] = en[:lines], l2[:lines]
        if len(texts[lang]) < 2:
            raise LsnError(f"{lang} has {len(texts[lang])} parallel line(s) in {folder}", "give at least two lines")
    english = pairs[others[0]]
    return Texts({"en": english} | texts, pairs, str(folder))


@dataclass
class LatentStates:
    """States of every language under every condition, all [sentences, depths, d] float32."""

    texts: Texts
    conditions: list[Condition]
    own: dict[tuple[str, str], torch.Tensor]  # (condition key, lang) → states of lang's lines
    english: dict[tuple[str, str], torch.Tensor]  # (condition key, L2) → English lines paired with L2
    applied: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # condition → lang → specs

    @property
    def depths(self) -> int:
        return next(iter(self.own.values())).shape[1]


def gather(handle: ModelHandle, session: Session | None, texts: Texts, conditions: Sequence[Condition], *,
           batch_size: int = 32, progress: Progress | None = None, cancel: Cancel | None = None) -> LatentStates:
    """Every (condition, language) state tensor, each from the session's cache when it is there.
    `progress(label, done, total)` counts sentences, labelled `condition · lang`."""
    planner = Planner(handle, session)
    applied = {c.key: {lang: planner.applied(c, lang) for lang in texts.languages} for c in conditions}
    # Every plan first (sets, statistics, random draws): a condition that cannot be resolved fails
    # before any model work, not after the conditions before it were computed.
    plans = {(c.key, lang): planner.plan(c, lang) for c in conditions for lang in texts.languages}
    own: dict[tuple[str, str], torch.Tensor] = {}
    english: dict[tuple[str, str], torch.Tensor] = {}
    for condition in conditions:
        for lang in texts.languages:
            todo = [(own, lang, texts.lines[lang], lang)]
            if lang != "en":
                todo.append((english, lang, texts.pairs[lang], "en"))
            for target, slot, sentences, reader in todo:
                plan, key = plans[(condition.key, reader)]
                target[(condition.key, slot)] = cached_states(
                    session, handle, reader, sentences, plan, key, batch_size=batch_size, progress=progress,
                    label=f"{condition.key} · {reader}", cancel=cancel)
    return LatentStates(texts, list(conditions), own, english, applied)


def check_layer(layer: int | None, depths: int) -> int:
    """`layer` checked against the model's depths (default: the middle one)."""
    if layer is None:
        return depths // 2
    if not 0 <= layer < depths:
        raise LsnError(f"layer {layer} is beyond this model's depths 0–{depths - 1}",
                       f"give --layer between 0 (embeddings) and {depths - 1} (the last decoder layer)")
    return layer


def analyse(states: LatentStates, analysis: str, *, layer: int | None = None, k: int = DEFAULT_K) -> dict[str, Any]:
    """One analysis's result as JSON-ready data (module doc); `layer` is the depth of the centroid
    matrix and the PCA (default: the middle depth)."""
    if analysis not in ANALYSES:
        raise LsnError(f"unknown analysis {analysis!r}", f"choose one of {', '.join(ANALYSES)}")
    depth = check_layer(layer, states.depths)
    l2s = [lang for lang in states.texts.languages if lang != "en"]
    result: dict[str, Any] = {
        "analysis": analysis, "languages": states.texts.languages, "depths": states.depths,
        "sentences": {lang: len(lines) for lang, lines in states.texts.lines.items()},
        "corpus": states.texts.source, "conditions": [c.to_json() for c in states.conditions],
        "applied": states.applied,
    }
    by_condition: dict[str, Any] = {}
    for condition in states.conditions:
        own = {lang: states.own[(condition.key, lang)] for lang in states.texts.languages}
        if analysis == "centroids":
            similarity = measures.centroid_similarity(own)
            by_condition[condition.key] = {
                "en": {lang: similarity[:, 0, i].tolist() for i, lang in enumerate(own) if lang != "en"},
                "matrix": similarity[depth].tolist(),
            }
        elif analysis == "pca":
            projection = measures.pca_2d({lang: s[:, depth] for lang, s in own.items()})
            by_condition[condition.key] = {"coords": {lang: c.tolist() for lang, c in projection.coords.items()},
                                           "explained": list(projection.explained)}
        elif analysis == "cevr":
            counts = {lang: [measures.components_for(s[:, d]) for d in range(states.depths)] for lang, s in own.items()}
            by_condition[condition.key] = {
                lang: {f"{t:g}": [per_depth[i] for per_depth in counts[lang]] for i, t in enumerate(measures.THRESHOLDS)}
                for lang in own}
        elif analysis == "mknn":
            aligned = {lang: (states.english[(condition.key, lang)], own[lang]) for lang in l2s}
            by_condition[condition.key] = {
                lang: [measures.mutual_knn(en[:, d], l2[:, d], k) for d in range(states.depths)]
                for lang, (en, l2) in aligned.items()}
            result.setdefault("tied", {})[condition.key] = {
                lang: [max(measures.tied_share(en[:, d], k), measures.tied_share(l2[:, d], k))
                       for d in range(states.depths)] for lang, (en, l2) in aligned.items()}
        else:
            pairs = {lang: measures.pair_similarity(states.english[(condition.key, lang)], own[lang]) for lang in l2s}
            by_condition[condition.key] = {lang: {"parallel": p.parallel.tolist(), "nonparallel": p.nonparallel.tolist(),
                                                  "gap": p.gap.tolist()} for lang, p in pairs.items()}
    result["results"] = by_condition
    if analysis in ("centroids", "pca"):
        result["layer"] = depth
    if analysis == "mknn":
        result["k"] = k
    if analysis == "parallel":
        result["summary"] = gap_summary(by_condition, states.conditions, states.depths)
    return result


def middle_depths(depths: int) -> list[int]:
    """The middle half of the decoder layers (depths ⌈n/4⌉ … ⌊3n/4⌋ of n layers), where Type-1
    neurons act and Tezuka & Inoue's Fig. 5 shows the gap shrinking."""
    n = depths - 1
    return list(range(max(1, -(-n // 4)), max(1, 3 * n // 4) + 1))


def gap_summary(by_condition: dict[str, Any], conditions: Sequence[Condition], depths: int) -> dict[str, Any]:
    """Per condition and language: the mean gap over the middle depths, and by how much it is
    smaller than without interventions (the shrink); a random condition's shrink is what an
    intervention's must exceed."""
    middle = middle_depths(depths)
    summary: dict[str, Any] = {"middle_depths": middle, "conditions": {}}
    base = by_condition["none"]
    for condition in conditions:
        rows = {}
        for lang, values in by_condition[condition.key].items():
            gap = sum(values["gap"][d] for d in middle) / len(middle)
            none = sum(base[lang]["gap"][d] for d in middle) / len(middle)
            rows[lang] = {"mid_gap": gap, "mid_shrink": none - gap}
        summary["conditions"][condition.key] = rows
    return summary


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The result as long-format rows (`CSV_FIELDS`); PCA has one row per sentence and axis."""
    rows: list[dict[str, Any]] = []
    analysis = result["analysis"]

    def add(condition: str, lang: str, depth: int, measure: str, value: float, sentence: int | str = "") -> None:
        rows.append({"analysis": analysis, "condition": condition, "lang": lang, "depth": depth,
                     "sentence": sentence, "measure": measure, "value": value})

    languages = result["languages"]
    for condition, data in result["results"].items():
        if analysis == "centroids":
            for lang, curve in data["en"].items():
                for depth, value in enumerate(curve):
                    add(condition, lang, depth, "cos_en_centroid", value)
            for i, row in enumerate(data["matrix"]):
                for j, value in enumerate(row):
                    add(condition, languages[i], result["layer"], f"cos_centroid_{languages[j]}", value)
        elif analysis == "pca":
            for lang, coords in data["coords"].items():
                for sentence, (x, y) in enumerate(coords):
                    add(condition, lang, result["layer"], "pc1", x, sentence)
                    add(condition, lang, result["layer"], "pc2", y, sentence)
        elif analysis == "cevr":
            for lang, counts in data.items():
                for threshold, curve in counts.items():
                    for depth, value in enumerate(curve):
                        add(condition, lang, depth, f"components_{threshold}", value)
        elif analysis == "mknn":
            for lang, curve in data.items():
                for depth, value in enumerate(curve):
                    add(condition, lang, depth, f"mutual_knn_k{result['k']}", value)
        else:
            for lang, curves in data.items():
                for measure, curve in curves.items():
                    for depth, value in enumerate(curve):
                        add(condition, lang, depth, measure, value)
    return rows
