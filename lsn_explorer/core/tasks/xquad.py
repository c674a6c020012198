"""XQuAD: extractive QA in 12 languages (Artetxe et al. 2020), SQuAD v1.1 JSON format.

The loader flattens articles → paragraphs → questions into one example per question and checks
that every answer span is where `answer_start` says it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lsn_explorer.errors import TaskFileError


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
        data = json.loads(path.read_text(encoding="utf-8"))
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
                    for answer in answers if check_spans else ():
                        if context[answer.start:answer.start + len(answer.text)] != answer.text:
                            raise TaskFileError(
                                f"{path}: question {qa['id']}: answer_start {answer.start} does not "
                                f"point at {answer.text!r}",
                                "answer_start is a character offset into the paragraph's context",
                            )
                    examples.append(XquadExample(str(qa["id"]), article.get("title", ""), context,
                                                 qa["question"], answers))
    except (KeyError, TypeError) as exc:
        raise TaskFileError(f"{path}: missing SQuAD field {exc}", "each qa needs id, question, answers") from exc
    return examples
