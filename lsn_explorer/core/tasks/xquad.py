"""XQuAD: extractive QA in 12 languages (Artetxe et al. 2020).

Two sources, one `XquadExample` list, one example per question:
- SQuAD v1.1 JSON (the release's `xquad.<lang>.json`, and the demo samples in `assets/tasks/xquad`),
  flattened from articles → paragraphs → questions;
- the Hugging Face `google/xquad` dataset (config `xquad.<lang>`, one `validation` split; columns
  id, context, question, answers{text, answer_start}), read with the optional `datasets` package.
Both check that every answer span is where `answer_start` says it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsn_explorer.core.data.languages import dataset_code
from lsn_explorer.core.tasks.files import HubSource, load_hub_split, read_utf8
from lsn_explorer.errors import TaskFileError

HUB_DATASET = "google/xquad"
HUB_SPLIT = "validation"  # XQuAD is an evaluation set: the hub keeps all of it as `validation`
HUB_SPLITS: tuple[str, ...] = ("test", "validation")  # what callers may ask for; both read HUB_SPLIT
HUB_SOURCE = HubSource("XQuAD", HUB_DATASET,
                       "or pass --data-dir with a folder of XQuAD JSON files (xquad/xquad.<lang>.json)")
_HUB_FIELDS = "XQuAD rows need id, context, question and answers{text: [...], answer_start: [...]}"


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the context


@dataclass(frozen=True)
class XquadExample:
    id: str
    title: str
    context: str
    question: str
    answers: tuple[Answer, ...]


def load_xquad(path: str | Path, *, check_spans: bool = True) -> list[XquadExample]:
    """Read a SQuAD v1.1 JSON file into one example per question.

    Raises:
        TaskFileError: missing file, invalid JSON, missing keys, or (with `check_spans`) an
            answer whose `answer_start` does not point at its text.
    """
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"XQuAD file {path} does not exist", "check the path")
    try:
        data = json.loads(read_utf8(path, "XQuAD file"))
    except json.JSONDecodeError as exc:
        raise TaskFileError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})", "check the file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise TaskFileError(f"{path} is not SQuAD v1.1 JSON (no 'data' list)",
                            'expected {"version": "1.1", "data": [...]}')
    examples = []
    try:
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    answers = tuple(Answer(a["text"], int(a["answer_start"])) for a in qa["answers"])
                    examples.append(_example(str(qa["id"]), article.get("title", ""), context, qa["question"],
                                             answers, f"{path}: question {qa['id']}", check_spans))
    except (KeyError, TypeError) as exc:
        raise TaskFileError(f"{path}: missing SQuAD field {exc}", "each qa needs id, question, answers") from exc
    return examples


def load_xquad_hub(lang: str, split: str = "test", dataset: str = HUB_DATASET, *,
                   check_spans: bool = True) -> list[XquadExample]:
    """Read one language of XQuAD from the Hugging Face hub (or the local datasets cache, where
    `datasets` keeps every download: only the first call needs the network).

    Args:
        lang: our language code (the config is `xquad.<XQuAD code>`, through the language table).
        split: test | validation. XQuAD has one split of 1190 questions per language, which the
            hub calls `validation` and this project calls `test` (as the JSON release has no
            split); both names read it.
        dataset: hub id of the dataset (`google/xquad`, or a copy with the same configs and columns).
        check_spans: check that every `answer_start` points at its answer's text, as `load_xquad` does.

    Returns:
        The examples in dataset order, equal to `load_xquad` on the same questions, except that the
        hub rows carry no article title (`title` is "").

    Raises:
        LanguageError: XQuAD does not cover `lang`.
        TaskFileError: an unknown split, `datasets` is not installed, the download failed (or the
            hub is offline and the language is not cached), or a row lacks a field or has a bad span.
    """
    code = dataset_code("xquad", lang)
    if split not in HUB_SPLITS:
        raise TaskFileError(f"XQuAD has no split {split!r}",
                            f"use {' or '.join(HUB_SPLITS)} (both read the hub's only split, {HUB_SPLIT})")
    config = f"xquad.{code}"
    rows = load_hub_split(HUB_SOURCE, dataset, config, HUB_SPLIT)
    examples = []
    for i, row in enumerate(rows):
        where = f"{dataset} {config} row {i}"
        try:
            answers = _hub_answers(row["answers"])
            examples.append(_example(str(row["id"]), "", row["context"], row["question"], answers,
                                     f"{where} (question {row['id']})", check_spans))
        except KeyError as exc:
            raise TaskFileError(f"{where} has no {exc} field", _HUB_FIELDS) from exc
        except (TypeError, ValueError) as exc:
            raise TaskFileError(f"{where} has malformed answers ({exc})", _HUB_FIELDS) from exc
    return examples


def _hub_answers(answers: Any) -> tuple[Answer, ...]:
    """The hub's answers column, a dict of parallel lists (`datasets.Sequence` of a dict), as Answers."""
    texts, starts = answers["text"], answers["answer_start"]
    if len(texts) != len(starts):
        raise ValueError(f"{len(texts)} texts but {len(starts)} answer_start values")
    return tuple(Answer(text, int(start)) for text, start in zip(texts, starts))


def _example(ident: str, title: str, context: str, question: str, answers: tuple[Answer, ...],
             where: str, check_spans: bool) -> XquadExample:
    """One example, with each answer's span checked against the context when asked."""
    for answer in answers if check_spans else ():
        if context[answer.start:answer.start + len(answer.text)] != answer.text:
            raise TaskFileError(f"{where}: answer_start {answer.start} does not point at {answer.text!r}",
                                "answer_start is a character offset into the paragraph's context")
    return XquadExample(ident, title, context, question, answers)
