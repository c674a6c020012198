"""The language table maps every dataset's codes through one place."""

from __future__ import annotations

import pytest

from lsn_explorer.core.data.languages import dataset_code, from_dataset_code, get_language, parse_languages
from lsn_explorer.core.data.writing import script_mix, script_of, script_share
from lsn_explorer.errors import LanguageError


@pytest.mark.parametrize(
    ("dataset", "code", "ours"),
    [("flores", "hin_Deva", "hi"), ("tatoeba", "cmn", "zh"), ("xnli", "zh", "zh"),
     ("mkqa", "zh_cn", "zh"), ("flores", "zho_Hans", "zh"), ("tatoeba", "urd", "ur")],
)
def test_dataset_codes_round_trip(dataset, code, ours):
    assert from_dataset_code(dataset, code).code == ours
    assert dataset_code(dataset, ours) == code


def test_unknown_code_suggests_close_ones():
    with pytest.raises(LanguageError) as info:
        get_language("zhh")
    assert "zh" in info.value.hint


def test_dataset_without_language_names_covered_ones():
    with pytest.raises(LanguageError, match="mkqa has no data for Hindi") as info:
        dataset_code("mkqa", "hi")
    assert "zh" in info.value.hint


def test_parse_languages_accepts_names_and_dataset_codes():
    assert [l.code for l in parse_languages("en, Hindi ,zh_cn,en")] == ["en", "hi", "zh"]


@pytest.mark.parametrize(
    ("char", "script"),
    [("a", "Latin"), ("ệ", "Latin"), ("中", "Han"), ("ひ", "Hiragana"), ("カ", "Katakana"),
     ("한", "Hangul"), ("क", "Devanagari"), ("ک", "Arabic"), ("ব", "Bengali"), ("த", "Tamil"), ("1", "Other")],
)
def test_script_of(char, script):
    assert script_of(char) == script


def test_script_share_counts_letters_only():
    assert script_share("東京に行きます 2024!", "Japanese") == 1.0
    assert script_share("東京 Tokyo", "Han") == pytest.approx(2 / 7)
    assert script_mix("ab中") == {"Latin": 2 / 3, "Han": 1 / 3}
    assert script_share("123 ...", "Latin") == 0.0
