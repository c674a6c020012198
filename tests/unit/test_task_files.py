"""Demo task samples in the real formats, and the same loaders on the real benchmark files."""

from __future__ import annotations

from collections import Counter

import pytest

from lsn_explorer.core.tasks.files import task_file
from lsn_explorer.core.tasks.mkqa import load_mkqa
from lsn_explorer.core.tasks.xnli import load_xnli
from lsn_explorer.core.tasks.xquad import load_xquad
from lsn_explorer.errors import LanguageError, TaskFileError


@pytest.mark.parametrize("lang", ["en", "vi", "hi", "ur", "zh"])
def test_demo_xnli_is_balanced(lang):
    examples = load_xnli(task_file("xnli", lang))
    assert len(examples) >= 60
    counts = Counter(e.label for e in examples)
    assert set(counts) == {0, 1, 2} and len(set(counts.values())) == 1


def test_demo_xnli_files_are_parallel():
    en, zh = load_xnli(task_file("xnli", "en")), load_xnli(task_file("xnli", "zh"))
    assert [(e.id, e.label) for e in en] == [(e.id, e.label) for e in zh]


@pytest.mark.parametrize("lang", ["en", "vi", "hi", "zh"])
def test_demo_xquad_answer_spans(lang):
    examples = load_xquad(task_file("xquad", lang), check_spans=False)
    assert len(examples) >= 30
    assert len({e.context for e in examples}) >= 8
    for e in examples:
        for a in e.answers:
            # An independent check of the span, not the loader's own.
            assert e.context.find(a.text) >= 0 and e.context[a.start:].startswith(a.text), (e.id, a)


def test_demo_mkqa_has_enough_queries_and_languages():
    langs = ["en", "fr", "es", "it", "nl", "ja", "ko", "vi", "zh"]
    per_lang = {lang: load_mkqa(task_file("mkqa", lang), lang) for lang in langs}
    assert all(len(rows) >= 40 for rows in per_lang.values())
    ids = {lang: [e.example_id for e in rows] for lang, rows in per_lang.items()}
    assert len({tuple(v) for v in ids.values()}) == 1
    en = per_lang["en"]
    assert sum(e.scorable for e in en) >= 40
    assert any(not e.scorable for e in en), "long_answer / unanswerable rows are part of the format"
    assert all(a.text for e in en if e.scorable for a in e.answers)


def test_malformed_xnli_row_names_file_and_line(tmp_path):
    bad = tmp_path / "xnli_test_en.tsv"
    bad.write_text("id\tpremise\thypothesis\tlabel\n0\tA.\tB.\t1\n1\tonly two\n", encoding="utf-8")
    with pytest.raises(TaskFileError, match=r"xnli_test_en.tsv:3: expected 4"):
        load_xnli(bad)
    bad.write_text("id\tpremise\thypothesis\tlabel\n0\tA.\tB.\tmaybe\n", encoding="utf-8")
    with pytest.raises(TaskFileError, match=r":2: label 'maybe'"):
        load_xnli(bad)


def test_xquad_bad_answer_start_is_reported(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "The sky is blue.",'
                   ' "qas": [{"id": "q1", "question": "What colour?", "answers": [{"answer_start": 3, "text": "blue"}]}]}]}]}')
    with pytest.raises(TaskFileError, match="q1: answer_start 3"):
        load_xquad(bad)


def test_mkqa_line_without_language(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"example_id": 1, "queries": {"en": "q"}, "answers": {"en": []}}\n')
    with pytest.raises(TaskFileError, match=r"m.jsonl:1: missing 'ja'"):
        load_mkqa(bad, "ja")


def test_unknown_task_and_uncovered_language():
    with pytest.raises(TaskFileError, match="unknown task"):
        task_file("squad2", "en")
    with pytest.raises(LanguageError):
        task_file("mkqa", "hi")


def test_real_xnli(shared_data):
    examples = load_xnli(task_file("xnli", "zh", shared_data))
    assert len(examples) == 5010
    assert Counter(e.label for e in examples) == {0: 1670, 1: 1670, 2: 1670}
    assert len(load_xnli(task_file("xnli", "ur", shared_data, split="validation"))) == 2490


def test_real_xquad(shared_data):
    examples = load_xquad(task_file("xquad", "hi", shared_data))
    assert len(examples) == 1190
    assert len({e.context for e in examples}) == 240


def test_real_mkqa(shared_data):
    zh = load_mkqa(task_file("mkqa", "zh", shared_data), "zh")
    assert len(zh) == 6
    assert sum(e.scorable for e in zh) == 3
    assert any(a.text == "雷德利·斯科特" or "斯科特" in (a.text or "") for e in zh for a in e.answers)
