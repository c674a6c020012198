"""XQuAD, MKQA and FLORES+ from the Hugging Face hub (`--data-dir hf:...`), without network: the fake
`datasets` module of test_xnli_hub stands in for the real one. Each hub loader must give what the
file loader gives for the same content, ask for the right (dataset, config, split), and fail in one
line with a hint."""

from __future__ import annotations

import gzip
import json
import sys
import types
from dataclasses import replace

import pytest
from test_cli_engine import assert_error, run
from test_xnli_hub import fake_datasets

from lsn_explorer.core.data.corpora import read_lines, select
from lsn_explorer.core.tasks import registry
from lsn_explorer.core.tasks.flores import hub_lines
from lsn_explorer.core.tasks.mkqa import load_mkqa, load_mkqa_hub
from lsn_explorer.core.tasks.perplexity import heldout_lines, load_lines
from lsn_explorer.core.tasks.registry import load_examples
from lsn_explorer.core.tasks.xquad import Answer, XquadExample, load_xquad
from lsn_explorer.errors import LanguageError, TaskFileError

# --- XQuAD: google/xquad, config xquad.<lang>, one split `validation` --------------------------

CONTEXT_1 = "Der Rhein fließt durch Basel und Köln. Er mündet in die Nordsee."
CONTEXT_2 = "Die Stadt hat 300.000 Einwohner."
XQUAD_ROWS = [
    {"id": "q1", "context": CONTEXT_1, "question": "Wodurch fließt der Rhein?",
     "answers": {"text": ["Basel und Köln"], "answer_start": [23]}},
    {"id": "q2", "context": CONTEXT_1, "question": "Wohin mündet er?",
     "answers": {"text": ["die Nordsee", "Nordsee"], "answer_start": [52, 56]}},
    {"id": "q3", "context": CONTEXT_2, "question": "Wie viele Einwohner?",
     "answers": {"text": ["300.000"], "answer_start": [14]}},
]


def squad_json(rows):
    """The same questions as SQuAD v1.1 JSON, one paragraph per context, written independently of
    the loader (the hub rows carry no title, so neither does this)."""
    paragraphs: dict[str, list] = {}
    for row in rows:
        answers = [{"text": t, "answer_start": s} for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"])]
        paragraphs.setdefault(row["context"], []).append({"id": row["id"], "question": row["question"], "answers": answers})
    return {"version": "1.1", "data": [{"paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}]}


@pytest.mark.parametrize("lang,source,split,dataset,config", [
    ("de", "hf:google/xquad", "test", "google/xquad", "xquad.de"),
    ("German", "hf:google/xquad", "validation", "google/xquad", "xquad.de"),  # a name maps to its code
    ("ZH", "hf:me/xquad-copy", "test", "me/xquad-copy", "xquad.zh"),
])
def test_xquad_hub_rows_equal_the_file_loader(monkeypatch, tmp_path, lang, source, split, dataset, config):
    calls = fake_datasets(monkeypatch, rows=XQUAD_ROWS)
    path = tmp_path / "xquad.de.json"
    path.write_text(json.dumps(squad_json(XQUAD_ROWS), ensure_ascii=False), encoding="utf-8")
    examples = load_examples("xquad", lang, source, split)
    assert calls == [(dataset, config, "validation")]  # XQuAD's only split, whatever `split` says
    assert examples == load_xquad(path)
    assert examples[1] == XquadExample("q2", "", CONTEXT_1, "Wohin mündet er?",
                                       (Answer("die Nordsee", 52), Answer("Nordsee", 56)))


def test_xquad_hub_checks_answer_spans(monkeypatch):
    bad = [dict(XQUAD_ROWS[2], answers={"text": ["300.000"], "answer_start": [3]})]
    fake_datasets(monkeypatch, rows=bad)
    with pytest.raises(TaskFileError, match=r"question q3\): answer_start 3 does not point at '300.000'"):
        load_examples("xquad", "de", "hf:google/xquad")
    from lsn_explorer.core.tasks.xquad import load_xquad_hub

    assert load_xquad_hub("de", check_spans=False)[0].answers == (Answer("300.000", 3),)


@pytest.mark.parametrize("row,fragment", [
    ({"id": "q1", "question": "?", "answers": {"text": [], "answer_start": []}}, "row 0 has no 'context' field"),
    (dict(XQUAD_ROWS[0], answers={"text": ["a", "b"], "answer_start": [0]}), "2 texts but 1 answer_start"),
    (dict(XQUAD_ROWS[0], answers=None), "malformed answers"),
])
def test_malformed_xquad_hub_rows(monkeypatch, row, fragment):
    fake_datasets(monkeypatch, rows=[row])
    with pytest.raises(TaskFileError, match=fragment) as info:
        load_examples("xquad", "de", "hf:google/xquad")
    assert "answer_start" in info.value.hint


# --- MKQA: apple/mkqa, one config, one split `train`, answer types as class ids ----------------

HUB_TYPES = ["entity", "long_answer", "unanswerable", "date", "number", "number_with_unit", "short_phrase", "binary"]
MKQA_LINES = [  # the release's JSONL: int ids, types as names, aliases and text sometimes absent
    {"example_id": 11, "query": "who wrote faust",
     "queries": {"en": "who wrote faust", "zh_cn": "浮士德是谁写的", "ja": "ファウストの作者は"},
     "answers": {"en": [{"type": "entity", "entity": "Q5879", "text": "Goethe", "aliases": ["J. W. Goethe"]}],
                 "zh_cn": [{"type": "entity", "entity": "Q5879", "text": "歌德"}],
                 "ja": [{"type": "entity", "entity": "Q5879", "text": "ゲーテ", "aliases": []}]}},
    {"example_id": 12, "query": "why is the sky blue",
     "queries": {"en": "why is the sky blue", "zh_cn": "天空为什么是蓝色的", "ja": "空はなぜ青い"},
     "answers": {lang: [{"type": "long_answer"}] for lang in ("en", "zh_cn", "ja")}},
    {"example_id": 13, "query": "when did it open",
     "queries": {"en": "when did it open", "zh_cn": "它何时开业", "ja": "いつ開業した"},
     "answers": {lang: [{"type": "date", "text": "1999"}, {"type": "number", "text": "1999", "aliases": ["99"]}]
                 for lang in ("en", "zh_cn", "ja")}},
]


def hub_row(line, type_names=HUB_TYPES):
    """A JSONL line as the hub dataset stores it: id as text, type as a class id, entity and
    aliases filled in, text kept (None when absent)."""
    answers = {lang: [{"type": type_names.index(a["type"]), "entity": a.get("entity", ""), "text": a.get("text"),
                       "aliases": a.get("aliases", [])} for a in rows] for lang, rows in line["answers"].items()}
    return {"example_id": str(line["example_id"]), "queries": line["queries"], "query": line["query"], "answers": answers}


def write_jsonl(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return path


def with_features(monkeypatch, features):
    """Make the fake's splits carry `features` (what the real dataset says about its columns)."""
    module = sys.modules["datasets"]
    plain = module.load_dataset

    def load_dataset(*args, **kwargs):
        rows = plain(*args, **kwargs)
        rows.features = features
        return rows

    monkeypatch.setattr(module, "load_dataset", load_dataset)


@pytest.mark.parametrize("lang,split,source,dataset", [
    ("zh", "test", "hf:apple/mkqa", "apple/mkqa"),  # our zh is MKQA's zh_cn
    ("ja", "train", "hf:apple/mkqa", "apple/mkqa"),
    ("en", "test", "hf:me/mkqa-copy", "me/mkqa-copy"),
])
def test_mkqa_hub_rows_equal_the_file_loader(monkeypatch, tmp_path, lang, split, source, dataset):
    calls = fake_datasets(monkeypatch, rows=[hub_row(line) for line in MKQA_LINES])
    examples = load_examples("mkqa", lang, source, split)
    assert calls == [(dataset, None, "train")]  # MKQA's only split, whatever `split` says
    assert examples == load_mkqa(write_jsonl(tmp_path / "mkqa.jsonl.gz", MKQA_LINES), lang)
    assert [e.scorable for e in examples] == [True, False, True]
    assert [a.type for a in examples[2].answers] == ["date", "number"]


def test_mkqa_types_are_named_by_the_datasets_class_label(monkeypatch):
    reordered = list(reversed(HUB_TYPES))  # a copy whose ClassLabel lists the types otherwise
    fake_datasets(monkeypatch, rows=[hub_row(line, reordered) for line in MKQA_LINES])
    label = types.SimpleNamespace(names=reordered)
    with_features(monkeypatch, {"answers": {"zh_cn": [{"type": label, "text": None}]}})
    examples = load_mkqa_hub("zh")
    assert [[a.type for a in e.answers] for e in examples] == [["entity"], ["long_answer"], ["date", "number"]]


def test_mkqa_hub_copy_with_type_names(monkeypatch, tmp_path):
    fake_datasets(monkeypatch, rows=MKQA_LINES)  # rows exactly as the JSONL has them
    assert load_mkqa_hub("ja") == load_mkqa(write_jsonl(tmp_path / "m.jsonl.gz", MKQA_LINES), "ja")


def test_mkqa_hub_matches_the_real_release(monkeypatch, shared_data):
    files = sorted((shared_data / "mkqa").glob("*.jsonl*"))
    if not files:
        pytest.skip("no MKQA file in the shared data")
    with gzip.open(files[0], "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    fake_datasets(monkeypatch, rows=[hub_row(line) for line in lines])
    for lang in ("en", "zh", "ja", "ko", "vi", "ar"):
        assert load_mkqa_hub(lang) == load_mkqa(files[0], lang), lang


def test_mkqa_hub_row_without_the_language(monkeypatch):
    row = hub_row(MKQA_LINES[0])
    del row["answers"]["zh_cn"]
    fake_datasets(monkeypatch, rows=[row])
    with pytest.raises(TaskFileError, match="apple/mkqa row 0: missing 'zh_cn' for language zh_cn") as info:
        load_examples("mkqa", "zh", "hf:apple/mkqa")
    assert "answers{lang" in info.value.hint


# --- FLORES+: openlanguagedata/flores_plus, config <iso_639_3>_<script>, splits dev / devtest ---

FLORES_ROWS = [{"id": i, "text": text} for i, text in enumerate(
    ["  यह पहला वाक्य है।", "दूसरा वाक्य।  ", "", "तीसरा वाक्य यहाँ है।"])]


@pytest.mark.parametrize("lang,split,config", [
    ("hi", "devtest", "hin_Deva"), ("hin_Deva", "dev", "hin_Deva"),
    ("zh", "devtest", "cmn_Hans"),  # FLORES-200 zho_Hans is Mandarin, cmn_Hans, in FLORES+
])
def test_flores_hub_lines_equal_a_flores_file(monkeypatch, tmp_path, lang, split, config):
    calls = fake_datasets(monkeypatch, rows=FLORES_ROWS)
    path = tmp_path / f"{config}.{split}"
    path.write_text("\n".join(row["text"] for row in FLORES_ROWS) + "\n", encoding="utf-8")
    lines = hub_lines(lang, split)
    assert calls == [("openlanguagedata/flores_plus", config, split)]
    assert lines == select(read_lines(path), "all") == ["यह पहला वाक्य है।", "दूसरा वाक्य।", "तीसरा वाक्य यहाँ है।"]


def test_load_lines_reads_each_source(monkeypatch, tmp_path):
    calls = fake_datasets(monkeypatch, rows=FLORES_ROWS)
    assert load_lines("hi", "hf:openlanguagedata/flores_plus", "dev") == hub_lines("hi", "dev")
    assert calls[0] == ("openlanguagedata/flores_plus", "hin_Deva", "dev")
    assert load_lines("en") == heldout_lines("en") != []  # the demo corpus's held-out lines
    sentences = [f"sentence {i}" for i in range(25)]
    (tmp_path / "hin_Deva.devtest").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    assert load_lines("hi", tmp_path) == ["sentence 9", "sentence 19"]  # every tenth line is held out


@pytest.mark.parametrize("rows,split,fragment", [
    (FLORES_ROWS, "test", "FLORES\\+ has no split 'test'"),
    ([{"id": 0, "sentence": "a"}], "devtest", "rows have no 'text' field"),
    ([], "devtest", r"openlanguagedata/flores_plus \(hin_Deva, devtest\) has no rows"),
])
def test_flores_hub_errors(monkeypatch, rows, split, fragment):
    fake_datasets(monkeypatch, rows=rows)
    with pytest.raises(TaskFileError, match=fragment):
        hub_lines("hi", split)


# --- what every hub loader shares: checks before loading, one-line errors with hints ------------

LOADERS = [  # (how to call it, what its hint names for doing without the hub)
    (lambda: load_examples("xquad", "de", "hf:google/xquad"), "xquad/xquad.<lang>.json"),
    (lambda: load_examples("mkqa", "zh", "hf:apple/mkqa"), "mkqa/*.jsonl.gz"),
    (lambda: load_lines("hi", "hf:openlanguagedata/flores_plus"), "hin_Deva.devtest"),
]


def assert_one_line(error):
    assert error.message and error.hint and "\n" not in error.message + error.hint, error


@pytest.mark.parametrize("call,local", LOADERS)
def test_datasets_not_installed(monkeypatch, call, local):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(TaskFileError, match="needs the `datasets` package") as info:
        call()
    assert "pip install datasets" in info.value.hint and local in info.value.hint
    assert_one_line(info.value)


@pytest.mark.parametrize("offline", [True, False])
@pytest.mark.parametrize("call,local", LOADERS)
def test_download_failure(monkeypatch, call, local, offline):
    error = ConnectionError("Couldn't reach the dataset on the Hub (ConnectError)\nmore detail")
    fake_datasets(monkeypatch, error=error)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    if offline:
        monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(TaskFileError) as info:
        call()
    if offline:
        assert "while offline" in info.value.message and "HF_DATASETS_OFFLINE" in info.value.hint
    else:
        assert "Couldn't reach the dataset on the Hub" in info.value.message and "network" in info.value.hint
    assert local in info.value.hint and isinstance(info.value.__cause__, ConnectionError)
    assert_one_line(info.value)


@pytest.mark.parametrize("error,fragment", [
    (FileNotFoundError("Dataset 'openlanguagedata/flores_plus' is a gated dataset on the Hub. You must be "
                       "authenticated to access it."), "hf auth login"),
    (ValueError("BuilderConfig 'hin_Deva' not found. Available: [" + ", ".join(f"'c{i}'" for i in range(300)) + "]"),
     "has the config 'hin_Deva'"),  # a language the dataset lacks
    (RuntimeError("Dataset scripts are no longer supported, but found flores_plus.py"), "Parquet copy"),
])
def test_hub_refusals_get_their_own_hints(monkeypatch, error, fragment):
    fake_datasets(monkeypatch, error=error)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(TaskFileError, match=r"cannot load openlanguagedata/flores_plus \(hin_Deva, devtest\)") as info:
        load_lines("hi", "hf:openlanguagedata/flores_plus")
    assert fragment in info.value.hint
    assert len(info.value.message) < 320  # a listing of every config is cut short
    assert_one_line(info.value)


@pytest.mark.parametrize("call,error,fragment", [
    (lambda: load_examples("xquad", "ja", "hf:google/xquad"), LanguageError, "xquad has no data for Japanese"),
    (lambda: load_examples("mkqa", "hi", "hf:apple/mkqa"), LanguageError, "mkqa has no data for Hindi"),
    (lambda: load_lines("tlh", "hf:openlanguagedata/flores_plus"), LanguageError, "unknown language code 'tlh'"),
    (lambda: load_examples("xquad", "de", "hf:google/xquad", "train"), TaskFileError, "XQuAD has no split 'train'"),
    (lambda: load_examples("mkqa", "en", "hf:apple/mkqa", "validation"), TaskFileError, "MKQA has no split"),
])
def test_language_and_split_are_checked_before_loading(monkeypatch, call, error, fragment):
    calls = fake_datasets(monkeypatch)
    with pytest.raises(error, match=fragment) as info:
        call()
    assert calls == [] and info.value.hint
    assert_one_line(info.value)


def test_every_task_has_a_hub_loader_and_one_without_is_refused(monkeypatch):
    assert all(task.hub is not None for task in registry.TASKS.values())
    monkeypatch.setitem(registry.TASKS, "xquad", replace(registry.TASKS["xquad"], hub=None))
    with pytest.raises(TaskFileError, match="xquad cannot be read from the Hugging Face hub") as info:
        load_examples("xquad", "de", "hf:google/xquad")
    assert "xnli, mkqa" in info.value.hint


@pytest.mark.parametrize("task,lang,source", [("xquad", "de", "hf:google/xquad"), ("mkqa", "zh", "hf:apple/mkqa")])
def test_cli_without_datasets(capsys, monkeypatch, task, lang, source):
    monkeypatch.setitem(sys.modules, "datasets", None)
    code, _, err = run(capsys, "score", "--task", task, "--lang", lang, "--data-dir", source)
    assert_error(code, err, "needs the `datasets` package", "pip install datasets")
