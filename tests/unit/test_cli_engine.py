"""`stats`, `identify` and `session` from the command line, on a tiny model: results and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from lsn_explorer import cli
from lsn_explorer.session.store import Session

SENTENCES = {
    "en": ["the cat sleeps in the sun.", "we walk to the river.", "a dog runs fast.", "rain falls at night."] * 6,
    "fr": ["le chat dort au soleil.", "nous marchons au fleuve.", "un chien court vite.", "la pluie tombe."] * 6,
    "es": ["el gato duerme al sol.", "vamos al rio.", "un perro corre.", "la lluvia cae de noche."] * 6,
}


@pytest.fixture()
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for lang, lines in SENTENCES.items():
        (folder / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def base(tiny_checkpoints, tmp_path, family="llama"):
    return ["--model", tiny_checkpoints[family], "--sessions-dir", tmp_path / "sessions", "--session", "t"]


def assert_error(code, err, *fragments):
    assert code == 2 and err.startswith("error: ") and "\nhint: " in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def no_session(tmp_path):
    return not (tmp_path / "sessions" / "t").exists()


def test_stats_identify_show_export_flow(capsys, tiny_checkpoints, tmp_path, corpus):
    args = base(tiny_checkpoints, tmp_path)
    code, out, _ = run(capsys, "stats", *args, "--langs", "en,fr,es", "--corpus", corpus, "--window", "16", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["lang"] for r in rows] == ["en", "fr", "es"] and all(not r["skipped"] for r in rows)
    code, out, _ = run(capsys, "stats", *args, "--langs", "en", "--corpus", corpus, "--window", "16", "--json")
    assert json.loads(out)[0]["skipped"]
    sessions = ["--sessions-dir", tmp_path / "sessions", "--session", "t"]
    code, out, _ = run(capsys, "identify", *sessions, "--method", "lape", "--top-rate", "0.1")
    assert code == 0 and "lape (LAPE):" in out and "per layer" in out
    code, out, err = run(capsys, "identify", *sessions, "--method", "actprob90p")
    assert code == 0 and "≈ 0.10" in err
    code, out, _ = run(capsys, "identify", *sessions, "--method", "random", "--reference", "lape", "--seed", "4")
    assert code == 0
    code, out, _ = run(capsys, "identify", "compare", *sessions, "--sets", "lape,random")
    assert code == 0 and "Jaccard" in out
    code, out, _ = run(capsys, "identify", "show", *sessions, "--name", "lape")
    assert code == 0 and "mean η²" in out
    code, _, _ = run(capsys, "identify", "export", *sessions, "--name", "lape", "--out", tmp_path / "lape.pth")
    nested = torch.load(tmp_path / "lape.pth", weights_only=True)
    assert len(nested) == 3 and len(nested[0]) == 2
    code, out, _ = run(capsys, "session", "export", "t", "--sessions-dir", tmp_path / "sessions", "--out", tmp_path / "x")
    assert code == 0 and (tmp_path / "x" / "records.json").is_file()
    assert (tmp_path / "x" / "stats" / "zh-s-consistent.csv").exists() is False
    assert (tmp_path / "x" / "stats" / "en-s-consistent.csv").read_text().startswith("layer,index,")
    code, out, _ = run(capsys, "session", "list", "--sessions-dir", tmp_path / "sessions")
    assert "3 stats" in out and "neuron_set" in out


def test_sharded_stats_merge(capsys, tiny_checkpoints, tmp_path, corpus):
    args = [*base(tiny_checkpoints, tmp_path), "--langs", "en", "--corpus", corpus, "--window", "8", "--batch-size", "1"]
    for i in range(2):
        assert run(capsys, "stats", *args, "--shard", f"{i}/2")[0] == 0
    code, out, _ = run(capsys, "stats", "merge", "--sessions-dir", tmp_path / "sessions", "--session", "t")
    assert code == 0 and "en: merged" in out
    assert run(capsys, "stats", *args)[0] == 0
    with Session.open("t", tmp_path / "sessions") as session:
        merged, single = session.records("stats", "en")
        a, b = session.get_tensors(merged.payload["artifact"]), session.get_tensors(single.payload["artifact"])
    for name in ("prob", "p50", "p95"):
        assert torch.equal(a[name], b[name]), name


def test_unknown_language_suggests(capsys, tiny_checkpoints, tmp_path, corpus):
    code, _, err = run(capsys, "stats", *base(tiny_checkpoints, tmp_path), "--langs", "en,frr", "--corpus", corpus)
    assert_error(code, err, "unknown language code 'frr'", "fr")
    assert no_session(tmp_path)


def test_language_without_corpus(capsys, tiny_checkpoints, tmp_path, corpus):
    code, _, err = run(capsys, "stats", *base(tiny_checkpoints, tmp_path), "--langs", "hi", "--corpus", corpus)
    assert_error(code, err, "no corpus text for hi", "en, es, fr")
    assert no_session(tmp_path)


def test_empty_corpus_file(capsys, tiny_checkpoints, tmp_path, corpus):
    (corpus / "en.txt").write_text("\n \n", encoding="utf-8")
    code, _, err = run(capsys, "stats", *base(tiny_checkpoints, tmp_path), "--langs", "en", "--corpus", corpus)
    assert_error(code, err, "is empty")
    assert no_session(tmp_path)


def test_corpus_shorter_than_a_window_warns_and_uses_it(capsys, tiny_checkpoints, tmp_path, corpus):
    (corpus / "en.txt").write_text("tiny.\n", encoding="utf-8")
    code, out, err = run(capsys, "stats", *base(tiny_checkpoints, tmp_path), "--langs", "en", "--corpus", corpus,
                         "--window", "32")
    assert code == 0 and "warning: en: the corpus has only" in err and "shorter than one window" in err


def test_window_longer_than_the_model_context(capsys, tiny_checkpoints, tmp_path, corpus):
    code, _, err = run(capsys, "stats", *base(tiny_checkpoints, tmp_path), "--langs", "en", "--corpus", corpus,
                       "--window", "4096")
    assert_error(code, err, "longer than the model's context")
    assert no_session(tmp_path)


def test_site_a_on_non_gated_model(capsys, tiny_checkpoints, tmp_path, corpus):
    code, _, err = run(capsys, "stats", *base(tiny_checkpoints, tmp_path, "gpt2"), "--langs", "en", "--corpus", corpus,
                       "--site", "a")
    assert_error(code, err, "not gated")
    assert no_session(tmp_path)


def test_identify_before_stats(capsys, tmp_path):
    code, _, err = run(capsys, "identify", "--sessions-dir", tmp_path / "sessions", "--session", "t", "--method", "lape")
    assert_error(code, err, "no session named 't'", "lsn-explorer stats")
    assert no_session(tmp_path)
    Session.open("t", tmp_path / "sessions").close()
    code, _, err = run(capsys, "identify", "--sessions-dir", tmp_path / "sessions", "--session", "t", "--method", "lape")
    assert_error(code, err, "no activation statistics")
    with Session.open("t", tmp_path / "sessions") as session:
        assert session.records() == []


def test_unknown_method_suggests(capsys, tmp_path):
    code, _, err = run(capsys, "identify", "--sessions-dir", tmp_path, "--session", "t", "--method", "lap")
    assert_error(code, err, "unknown identification method", "lape")


def test_parallel_files_with_different_line_counts(capsys, tiny_checkpoints, tmp_path, corpus):
    (corpus / "fr.txt").write_text("un.\ndeux.\n", encoding="utf-8")
    code, _, err = run(capsys, "identify", *base(tiny_checkpoints, tmp_path), "--method", "type1", "--langs", "fr",
                       "--corpus", corpus)
    assert_error(code, err, "different line counts")
    with Session.open("t", tmp_path / "sessions") as session:
        assert session.records() == []


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.json", "{not json", "invalid JSON"),
    ("bad2.json", '{"method": "x"}', "not a neuron-set JSON"),
    ("bad.pth", b"\x00garbage bytes", "not a readable .pth"),
    ("big.json", json.dumps({"method": "m", "n_layers": 2, "d_ff": 48, "neurons": {"en": [[0, 48]]}}), "beyond d_ff = 48"),
    ("layer.json", json.dumps({"method": "m", "n_layers": 2, "d_ff": 48, "neurons": {"en": [[5, 1]]}}), "layer 5 is beyond"),
])
def test_malformed_neuron_files(capsys, tiny_checkpoints, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = run(capsys, "identify", "import", *base(tiny_checkpoints, tmp_path), "--file", path)
    assert_error(code, err, message)
    with Session.open("t", tmp_path / "sessions") as session:
        assert session.records() == []


def test_pth_round_trip_through_import(capsys, tiny_checkpoints, tmp_path):
    nested = [[torch.tensor([1, 5]), torch.tensor([47])], [torch.tensor([], dtype=torch.long), torch.tensor([0, 2])]]
    torch.save(nested, tmp_path / "tang.pth")
    code, out, _ = run(capsys, "identify", "import", *base(tiny_checkpoints, tmp_path), "--file", tmp_path / "tang.pth",
                       "--langs", "zh,ja", "--name", "tang")
    assert code == 0 and "zh" in out and "ja" in out
    code, out, _ = run(capsys, "identify", "export", "--sessions-dir", tmp_path / "sessions", "--session", "t",
                       "--name", "tang", "--out", tmp_path / "back.pth")
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert [[t.tolist() for t in per] for per in back] == [[t.tolist() for t in per] for per in nested]


def test_wikipedia_corpus_offline_is_a_clear_error(capsys, tiny_checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run(capsys, "stats", *base(tiny_checkpoints, tmp_path), "--langs", "en", "--corpus", "hf:wikipedia")
    assert_error(code, err, "Wikipedia corpus needs")
    assert no_session(tmp_path)
