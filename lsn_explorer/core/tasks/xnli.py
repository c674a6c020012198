"""XNLI: natural language inference in 15 languages (Conneau et al. 2018).

Format read here: the per-language TSV with header `id premise hypothesis label`, labels
0 entailment, 1 neutral, 2 contradiction (the converted release in benchmark folders, and the demo
samples in `assets/tasks/xnli`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lsn_explorer.errors import TaskFileError

LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
HEADER: tuple[str, ...] = ("id", "premise", "hypothesis", "label")


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
    rows = path.read_text(encoding="utf-8").splitlines()
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
