"""XNLI from the Hugging Face hub (`--data-dir hf:xnli`), without network: a fake `datasets` module
stands in for the real one, and records what it was asked for."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from test_cli_engine import assert_error, run

from lsn_explorer.core.tasks.files import hub_dataset
from lsn_explorer.core.tasks.registry import load_examples
from lsn_explorer.core.tasks.xnli import XnliExample
from lsn_explorer.errors import LanguageError, TaskFileError

ROWS = [
    {"premise": "Ông ấy đi chợ sáng nay.", "hypothesis": "Ông ấy đã ra khỏi nhà.", "label": 0},
    {"premise": "Trời mưa suốt cả ngày.", "hypothesis": "Hôm nay trời nắng.", "label": 2},
    {"premise": "Cô ấy đọc một cuốn sách.", "hypothesis": "Cuốn sách rất dài.", "label": 1},
]


class FakeSplit(list):
    """What `load_dataset(..., split=...)` returns, reduced to what the loader uses: iterable
    rows, and `features["label"].names` when the labels are a ClassLabel."""

    def __init__(self, rows, label_names=None):
        super().__init__(rows)
        self.features = {"label": types.SimpleNamespace(names=label_names)} if label_names else {}


def fake_datasets(monkeypatch, rows=ROWS, label_names=None, error=None):
    calls = []

    def load_dataset(path, name=None, *, split=None):
        calls.append((path, name, split))
        if error is not None:
            raise error
        return FakeSplit(rows, label_names)

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)
    return calls


@pytest.mark.parametrize("lang,source,split,dataset,code", [
    ("vi", "hf:xnli", "test", "xnli", "vi"),
    ("Vietnamese", "hf:facebook/xnli", "validation", "facebook/xnli", "vi"),  # a name maps to its code
    ("ZH", "hf:xnli", "train", "xnli", "zh"),
])
def test_hub_rows_become_examples(monkeypatch, lang, source, split, dataset, code):
    calls = fake_datasets(monkeypatch)
    examples = load_examples("xnli", lang, source, split)
    assert calls == [(dataset, code, split)]
    assert examples == [XnliExample(f"{split}-{i}", r["premise"], r["hypothesis"], r["label"])
                        for i, r in enumerate(ROWS)]


@pytest.mark.parametrize("names,want", [
    (["entailment", "neutral", "contradiction"], [0, 2, 1]),  # the hub release: same order as ours
    (["contradiction", "entailment", "neutral"], [2, 1, 0]),  # a copy ordered otherwise: by name
    (["ENTAILMENT", "NEUTRAL", "CONTRADICTION"], [0, 2, 1]),
])
def test_labels_map_by_name_when_the_dataset_names_them(monkeypatch, names, want):
    fake_datasets(monkeypatch, label_names=names)
    assert [ex.label for ex in load_examples("xnli", "vi", "hf:xnli")] == want


@pytest.mark.parametrize("rows,names,fragment", [
    ([{"premise": "a", "hypothesis": "b", "label": 3}], None, "label 3 is not one of [0, 1, 2]"),
    ([{"premise": "a", "hypothesis": "b", "label": -1}], None, "label -1"),
    ([{"premise": "a", "label": 0}], None, "row 0 has no 'hypothesis' field"),
    (ROWS, ["LABEL_0", "LABEL_1", "LABEL_2"], "are not entailment, neutral, contradiction"),
    ([], None, "has no rows"),
])
def test_malformed_hub_rows(monkeypatch, rows, names, fragment):
    fake_datasets(monkeypatch, rows=rows, label_names=names)
    with pytest.raises(TaskFileError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_examples("xnli", "vi", "hf:xnli")


def test_language_and_split_are_checked_before_loading(monkeypatch):
    calls = fake_datasets(monkeypatch)
    with pytest.raises(LanguageError, match="xnli has no data for Japanese"):
        load_examples("xnli", "ja", "hf:xnli")
    with pytest.raises(TaskFileError, match="no split 'dev'") as info:
        load_examples("xnli", "vi", "hf:xnli", "dev")
    assert "train, validation, test" in info.value.hint
    assert calls == []


def test_datasets_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(TaskFileError, match="needs the `datasets` package") as info:
        load_examples("xnli", "vi", "hf:xnli")
    assert "pip install datasets" in info.value.hint and "TSV" in info.value.hint


@pytest.mark.parametrize("offline", [True, False])
@pytest.mark.parametrize("error", [ConnectionError("Couldn't reach 'xnli' on the Hub"),
                                   FileNotFoundError("Dataset 'xnli' doesn't exist on the Hub")])
def test_download_failure(monkeypatch, offline, error):
    fake_datasets(monkeypatch, error=error)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TaskFileError) as info:
        load_examples("xnli", "vi", "hf:xnli")
    if offline:
        assert "while offline" in info.value.message and "HF_HUB_OFFLINE" in info.value.hint
    else:
        assert str(error) in info.value.message and "network" in info.value.hint
    assert "cannot load xnli (vi, test)" in info.value.message and "TSV" in info.value.hint
    assert isinstance(info.value.__cause__, type(error))


@pytest.mark.parametrize("data_dir,want", [
    (None, None), ("/data/bench", None), (Path("bench"), None), ("hf:xnli", "xnli"),
    ("hf:facebook/xnli", "facebook/xnli"),
])
def test_hub_sources_are_told_apart_from_folders(data_dir, want):
    assert hub_dataset(data_dir) == want


def test_hub_source_errors():
    with pytest.raises(TaskFileError, match="names no dataset"):
        load_examples("xnli", "vi", "hf:")


def test_cli_scores_a_hub_sample(capsys, monkeypatch, tmp_path):
    from tiny import save_tiny_checkpoint

    calls = fake_datasets(monkeypatch)
    model = save_tiny_checkpoint("llama", tmp_path / "llama")
    code, out, _ = run(capsys, "score", "--model", model, "--sessions-dir", tmp_path / "s", "--session", "t",
                       "--task", "xnli", "--lang", "vi", "--sample", "1", "--data-dir", "hf:xnli",
                       "--split", "validation", "--json")
    assert code == 0 and calls == [("xnli", "vi", "validation")]
    shown = json.loads(out)["shown"]
    assert shown == {"premise": ROWS[1]["premise"], "hypothesis": ROWS[1]["hypothesis"], "gold": "contradiction"}


def test_cli_without_datasets(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    code, _, err = run(capsys, "score", "--task", "xnli", "--lang", "vi", "--data-dir", "hf:xnli")
    assert_error(code, err, "needs the `datasets` package", "pip install datasets")
