"""The language table (`assets/languages.toml`): one place that maps codes between datasets.

Our code is the key (`hi`); each dataset names the same language its own way (FLORES `hin_Deva`,
Tatoeba `hin`, XNLI/XQuAD `zh`, MKQA `zh_cn`). Loaders translate through `dataset_code` and
`from_dataset_code`; an unknown code raises a `LanguageError` that suggests close ones.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from lsn_explorer.assets import LANGUAGES_TOML as LANGUAGES_FILE
from lsn_explorer.errors import LanguageError

Dataset = Literal["flores", "tatoeba", "xnli", "xquad", "mkqa"]
DATASETS: tuple[str, ...] = ("flores", "tatoeba", "xnli", "xquad", "mkqa")


@dataclass(frozen=True)
class Language:
    """One row of the language table."""

    code: str
    name: str
    script: str
    codes: dict[str, str]  # dataset → that dataset's code for this language

    def code_in(self, dataset: Dataset) -> str | None:
        """This language's code in `dataset`, or None when the dataset does not cover it."""
        return self.codes.get(dataset)


@lru_cache(maxsize=1)
def language_table() -> dict[str, Language]:
    """All languages, keyed by our code, in table order."""
    with LANGUAGES_FILE.open("rb") as f:
        raw = tomllib.load(f)
    return {
        code: Language(
            code=code,
            name=row["name"],
            script=row["script"],
            codes={k: v for k, v in row.items() if k in DATASETS},
        )
        for code, row in raw.items()
    }


def get_language(code: str) -> Language:
    """Look up our code (case-insensitive), raising a `LanguageError` with suggestions."""
    table = language_table()
    lang = table.get(code.strip().lower())
    if lang is not None:
        return lang
    by_name = {row.name.lower(): row for row in table.values()}
    if code.strip().lower() in by_name:
        return by_name[code.strip().lower()]
    # A dataset code such as hin_Deva or zh_cn is accepted too: users paste them.
    for dataset in DATASETS:
        found = from_dataset_code(dataset, code, strict=False)  # type: ignore[arg-type]
        if found is not None:
            return found
    close = difflib.get_close_matches(code.lower(), list(table) + list(by_name), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known codes: {', '.join(table)}"
    raise LanguageError(f"unknown language code {code!r}", hint)


def parse_languages(spec: str | list[str]) -> list[Language]:
    """Parse "en,zh,hi" (or a list) into languages, keeping order and dropping repeats."""
    codes = spec.split(",") if isinstance(spec, str) else spec
    seen: dict[str, Language] = {}
    for code in codes:
        if code.strip():
            lang = get_language(code)
            seen.setdefault(lang.code, lang)
    if not seen:
        raise LanguageError("no languages given", "pass codes separated by commas, e.g. en,zh,hi")
    return list(seen.values())


def from_dataset_code(dataset: Dataset, code: str, *, strict: bool = True) -> Language | None:
    """The language a dataset's code stands for (`from_dataset_code("mkqa", "zh_cn")` → zh)."""
    for lang in language_table().values():
        if lang.codes.get(dataset, "").lower() == code.lower():
            return lang
    if strict:
        raise LanguageError(
            f"{dataset} code {code!r} is not in the language table",
            f"add a row to {LANGUAGES_FILE.name}, or use one of our codes",
        )
    return None


def dataset_code(dataset: Dataset, code: str) -> str:
    """A dataset's code for our language `code`, raising when the dataset lacks it."""
    lang = get_language(code)
    found = lang.code_in(dataset)
    if found is None:
        covered = [l.code for l in language_table().values() if dataset in l.codes]
        raise LanguageError(
            f"{dataset} has no data for {lang.name} ({lang.code})",
            f"{dataset} covers: {', '.join(covered)}",
        )
    return found
