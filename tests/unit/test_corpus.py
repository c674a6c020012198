"""The demo corpus: parallel, non-empty, every language in its own script."""

from __future__ import annotations

import pytest

from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR, available_languages, is_heldout, load_parallel
from lsn_explorer.core.data.languages import get_language
from lsn_explorer.core.data.writing import script_mix, script_share
from lsn_explorer.errors import CorpusError

REQUIRED = ["en", "fr", "es", "vi", "id", "ja", "zh", "hi", "ur", "bn", "ta", "ko", "nl", "it"]


def test_all_required_languages_present_and_parallel():
    assert set(REQUIRED) <= set(available_languages())
    corpus = load_parallel(REQUIRED)
    counts = {lang: len(rows) for lang, rows in corpus.lines.items()}
    assert len(set(counts.values())) == 1, counts
    assert len(corpus) >= 300


@pytest.mark.parametrize("lang", REQUIRED)
def test_lines_non_empty_and_in_expected_script(lang):
    lines = (DEMO_CORPUS_DIR / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    script = get_language(lang).script
    assert all(line.strip() for line in lines)
    assert len(set(lines)) == len(lines), "duplicate sentences"
    for i, line in enumerate(lines):
        assert "\t" not in line
        # Latin-script names or units may appear in a sentence, but most letters must be native.
        assert script_share(line, script) >= 0.8, (lang, i + 1, line)
    assert script_share("\n".join(lines), script) >= 0.97


def test_japanese_and_chinese_are_told_apart():
    ja = (DEMO_CORPUS_DIR / "ja.txt").read_text(encoding="utf-8").splitlines()
    zh = (DEMO_CORPUS_DIR / "zh.txt").read_text(encoding="utf-8").splitlines()
    def kana(line):
        return any(s in script_mix(line) for s in ("Hiragana", "Katakana"))

    assert sum(map(kana, ja)) / len(ja) > 0.95
    assert not any(map(kana, zh))


def test_sentences_are_varied_not_templated():
    en = (DEMO_CORPUS_DIR / "en.txt").read_text(encoding="utf-8").splitlines()
    openings = {" ".join(line.split()[:2]).lower() for line in en}
    assert len(openings) > 0.6 * len(en)
    words = {w.lower().strip(".,?!;:") for line in en for w in line.split()}
    assert len(words) > 1500


def test_heldout_split_is_every_tenth_line():
    corpus = load_parallel(["en", "zh"])
    held, train = corpus.split("heldout"), corpus.split("train")
    assert len(held) == sum(is_heldout(i) for i in range(len(corpus))) == len(corpus) // 10
    assert len(held) + len(train) == len(corpus)
    assert held.lines["en"][0] == corpus.lines["en"][9]
    assert not set(held.lines["zh"]) & set(train.lines["zh"])


def test_mismatched_parallel_files_are_refused(tmp_path):
    (tmp_path / "en.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "fr.txt").write_text("un\ndeux\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="different line counts"):
        load_parallel(["en", "fr"], tmp_path)


def test_missing_and_empty_corpus_files(tmp_path):
    (tmp_path / "en.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty"):
        load_parallel(["en"], tmp_path)
    with pytest.raises(CorpusError, match="no corpus text for hi") as info:
        load_parallel(["hi"], tmp_path)
    assert "en" in info.value.hint
