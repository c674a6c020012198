"""MKQA: open-domain QA with answers in 26 languages (Longpre et al. 2021).

Each example holds `queries{lang}` and `answers{lang: [{type, text, aliases}]}` for every language;
the loaders pick one language (MKQA codes come from the language table: our zh is zh_cn). Two
sources, one `MkqaExample` list:
- the release's JSONL (optionally gzipped; also the demo samples in `assets/tasks/mkqa`);
- the Hugging Face `apple/mkqa` dataset (one `train` split, the same fields, answer types stored
  as class ids), read with the optional `datasets` package.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from lsn_explorer.core.data.languages import dataset_code
from lsn_explorer.core.tasks.files import NOT_UTF8_HINT, HubSource, load_hub_split
from lsn_explorer.errors import TaskFileError

# Answer types without a short gold string; the official F1 skips them.
UNSCORED_TYPES = frozenset({"long_answer", "unanswerable"})
# The answer types in the order of the hub dataset's ClassLabel (apple/mkqa, feature answers.*.type);
# used when the rows hold class ids and the dataset does not name them.
ANSWER_TYPES: tuple[str, ...] = ("entity", "long_answer", "unanswerable", "date", "number", "number_with_unit",
                                 "short_phrase", "binary")
HUB_DATASET = "apple/mkqa"
HUB_SPLIT = "train"  # MKQA is an evaluation set of 10k queries; the hub keeps all of it as `train`
HUB_SPLITS: tuple[str, ...] = ("test", "train")  # what callers may ask for; both read HUB_SPLIT
HUB_SOURCE = HubSource("MKQA", HUB_DATASET, "or pass --data-dir with a folder holding the MKQA JSONL (mkqa/*.jsonl.gz)")


@dataclass(frozen=True)
class MkqaAnswer:
    type: str
    text: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class MkqaExample:
    example_id: str
    query: str
    answers: tuple[MkqaAnswer, ...]

    @property
    def scorable(self) -> bool:
        """False for long-answer / unanswerable queries, which MKQA's F1 leaves out."""
        return bool(self.answers) and not any(a.type in UNSCORED_TYPES for a in self.answers)


def load_mkqa(path: str | Path, lang: str) -> list[MkqaExample]:
    """Read an MKQA JSONL (optionally gzipped) file for one language (our code).

    Raises:
        TaskFileError: missing file, a line that is not JSON or lacks the language.
    """
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"MKQA file {path} does not exist", "check the path")
    code = dataset_code("mkqa", lang)
    opener = gzip.open if path.suffix == ".gz" else open
    examples = []
    lineno = 0
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    examples.append(_example(json.loads(line), code, lineno))
                except json.JSONDecodeError as exc:
                    raise TaskFileError(f"{path}:{lineno}: invalid JSON ({exc.msg})", "one JSON object per line") from exc
                except (KeyError, TypeError, IndexError) as exc:
                    raise TaskFileError(f"{path}:{lineno}: missing {exc} for language {code}", _FIELDS) from exc
    except UnicodeDecodeError:
        raise TaskFileError(f"{path}:{lineno + 1}: not UTF-8 text", NOT_UTF8_HINT) from None
    return examples


def load_mkqa_hub(lang: str, split: str = "test", dataset: str = HUB_DATASET) -> list[MkqaExample]:
    """Read one language of MKQA from the Hugging Face hub (or the local datasets cache, where
    `datasets` keeps every download: only the first call needs the network).

    Args:
        lang: our language code (mapped to MKQA's, e.g. zh → zh_cn, through the language table).
        split: test | train. MKQA has one split of 10k queries, which the hub calls `train` and this
            project calls `test` (it is only ever evaluated on); both names read it.
        dataset: hub id of the dataset (`apple/mkqa`, or a copy with the same fields).

    Returns:
        The examples in dataset order, equal to `load_mkqa` on the release's JSONL.

    Raises:
        LanguageError: MKQA does not cover `lang`.
        TaskFileError: an unknown split, `datasets` is not installed, the download failed (or the
            hub is offline and the dataset is not cached), or a row lacks the language.
    """
    code = dataset_code("mkqa", lang)
    if split not in HUB_SPLITS:
        raise TaskFileError(f"MKQA has no split {split!r}",
                            f"use {' or '.join(HUB_SPLITS)} (both read the hub's only split, {HUB_SPLIT})")
    rows = load_hub_split(HUB_SOURCE, dataset, None, HUB_SPLIT)
    types = _type_names(rows, code)
    examples = []
    for i, row in enumerate(rows):
        try:
            examples.append(_example(row, code, i, types))
        except (KeyError, TypeError, IndexError) as exc:
            raise TaskFileError(f"{dataset} row {i}: missing {exc} for language {code}", _FIELDS) from exc
    return examples


_FIELDS = "each example needs queries{lang} and answers{lang: [{type, text, aliases}]}"


def _example(row: Mapping[str, Any], code: str, fallback_id: int, types: Sequence[str] = ANSWER_TYPES) -> MkqaExample:
    """One example of either source in language `code`; a type given as a class id is named by `types`."""
    answers = tuple(
        MkqaAnswer(a["type"] if isinstance(a["type"], str) else types[a["type"]], a.get("text"),
                   tuple(a.get("aliases") or ()))
        for a in row["answers"][code]
    )
    return MkqaExample(str(row.get("example_id", fallback_id)), row["queries"][code], answers)


def _type_names(rows: Any, code: str) -> Sequence[str]:
    """The answer type names of the dataset's ClassLabel, or the release's order when it has none."""
    try:
        names = rows.features["answers"][code][0]["type"].names
    except (AttributeError, KeyError, IndexError, TypeError):
        return ANSWER_TYPES
    return tuple(names) if names else ANSWER_TYPES
