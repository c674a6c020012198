"""XNLI: natural language inference in 15 languages (Conneau et al. 2018).

Two sources, one `XnliExample` list:
- the per-language TSV with header `id premise hypothesis label`, labels 0 entailment, 1 neutral,
  2 contradiction (the converted release in benchmark folders, and the demo samples in
  `assets/tasks/xnli`);
- the Hugging Face `xnli` dataset (config = the XNLI language code; fields premise, hypothesis,
  label), read with the optional `datasets` package, which is imported only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsn_explorer.core.data.languages import dataset_code
from lsn_explorer.core.tasks.files import HubSource, load_hub_split, read_utf8
from lsn_explorer.errors import TaskFileError

LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
HEADER: tuple[str, ...] = ("id", "premise", "hypothesis", "label")
HUB_DATASET = "xnli"  # the hub id of the release (a redirect to facebook/xnli)
HUB_SPLITS: tuple[str, ...] = ("train", "validation", "test")
HUB_SOURCE = HubSource("XNLI", HUB_DATASET,
                       "or pass --data-dir with a folder of XNLI TSV files (xnli/xnli_test_<lang>.tsv)")


@dataclass(frozen=True)
class XnliExample:
    id: str
    premise: str
    hypothesis: str
    label: int  # index into LABELS


def load_xnli(path: str | Path) -> list[XnliExample]:
    """Read an XNLI TSV file.

    Raises:
        TaskFileError: missing file, wrong header, or a malformed row (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"XNLI file {path} does not exist", "check the path")
    rows = read_utf8(path, "XNLI file").splitlines()
    if not rows or tuple(rows[0].split("\t")) != HEADER:
        raise TaskFileError(
            f"{path}:1: header should be 'id<TAB>premise<TAB>hypothesis<TAB>label'",
            "XNLI files are TSV with that header line",
        )
    examples = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row.strip():
            continue
        fields = row.split("\t")
        if len(fields) != 4:
            raise TaskFileError(
                f"{path}:{lineno}: expected 4 tab-separated fields, found {len(fields)}",
                "each row is id, premise, hypothesis, label separated by tabs",
            )
        ident, premise, hypothesis, label = fields
        if label not in ("0", "1", "2"):
            raise TaskFileError(
                f"{path}:{lineno}: label {label!r} is not 0, 1 or 2",
                "labels are 0 entailment, 1 neutral, 2 contradiction",
            )
        examples.append(XnliExample(ident, premise, hypothesis, int(label)))
    return examples


def load_xnli_hub(lang: str, split: str = "test", dataset: str = HUB_DATASET) -> list[XnliExample]:
    """Read one language and split of XNLI from the Hugging Face hub (or the local datasets cache,
    where `datasets` keeps every download).

    Args:
        lang: our language code (mapped to the XNLI config through the language table).
        split: train | validation | test.
        dataset: hub id of the dataset (`xnli`, `facebook/xnli`, or a copy with the same fields).

    Returns:
        The examples in dataset order; ids are `<split>-<row>` (the hub rows have no id).

    Raises:
        LanguageError: XNLI does not cover `lang`.
        TaskFileError: `datasets` is not installed, an unknown split, the download failed (or the
            hub is offline and the split is not cached), or a row lacks a field or a known label.
    """
    code = dataset_code("xnli", lang)
    if split not in HUB_SPLITS:
        raise TaskFileError(f"XNLI on the hub has no split {split!r}", f"use one of: {', '.join(HUB_SPLITS)}")
    rows = load_hub_split(HUB_SOURCE, dataset, code, split)
    to_ours = _label_map(rows, dataset)
    examples = []
    for i, row in enumerate(rows):
        where = f"{dataset} {code} {split} row {i}"
        try:
            premise, hypothesis, label = row["premise"], row["hypothesis"], row["label"]
        except (KeyError, TypeError) as exc:
            raise TaskFileError(f"{where} has no {exc} field",
                                "XNLI rows need premise, hypothesis and label fields") from exc
        if label not in to_ours:
            raise TaskFileError(f"{where}: label {label!r} is not one of {sorted(to_ours)}",
                                "labels are 0 entailment, 1 neutral, 2 contradiction")
        examples.append(XnliExample(f"{split}-{i}", str(premise), str(hypothesis), to_ours[label]))
    return examples


def _label_map(rows: Any, dataset: str) -> dict[int, int]:
    """Dataset label id → index into LABELS.

    The hub release stores labels as a ClassLabel whose names are ours in our order; a copy may
    order them differently, so map by name when the names are there and by position otherwise.
    """
    features = getattr(rows, "features", None)
    names = getattr(features.get("label"), "names", None) if features is not None and hasattr(features, "get") else None
    if not names:
        return {i: i for i in range(len(LABELS))}
    lowered = [str(name).lower() for name in names]
    if sorted(lowered) != sorted(LABELS):
        raise TaskFileError(f"{dataset} labels {list(names)} are not {', '.join(LABELS)}",
                            "use a copy of XNLI with the original three labels")
    return {i: LABELS.index(name) for i, name in enumerate(lowered)}
