"""MKQA: open-domain QA with answers in 26 languages (Longpre et al. 2021), JSONL format.

Each line holds `queries{lang}` and `answers{lang: [{type, text, aliases}]}` for every language;
`load_mkqa` picks one language (MKQA codes come from the language table: our zh is zh_cn).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from lsn_explorer.core.data.languages import dataset_code
from lsn_explorer.errors import TaskFileError

# Answer types without a short gold string; the official F1 skips them.
UNSCORED_TYPES = frozenset({"long_answer", "unanswerable"})


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
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                query = row["queries"][code]
                answers = tuple(
                    MkqaAnswer(a["type"], a.get("text"), tuple(a.get("aliases") or ()))
                    for a in row["answers"][code]
                )
            except json.JSONDecodeError as exc:
                raise TaskFileError(f"{path}:{lineno}: invalid JSON ({exc.msg})", "one JSON object per line") from exc
            except (KeyError, TypeError) as exc:
                raise TaskFileError(
                    f"{path}:{lineno}: missing {exc} for language {code}",
                    "each line needs queries{lang} and answers{lang}",
                ) from exc
            examples.append(MkqaExample(str(row.get("example_id", lineno)), query, answers))
    return examples
