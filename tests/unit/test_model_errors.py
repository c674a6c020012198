"""Loading failures a user can cause: one line + hint from the CLI, exit 2, no traceback."""

from __future__ import annotations

import json

import pytest

from lsn_explorer import cli
from lsn_explorer.core.model import loading as model_module
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.errors import ModelLoadError, UnsupportedArchitecture


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_missing_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "model", "info", "--model", str(tmp_path / "nope"))
    assert_clean_error(code, err, "does not exist")


def test_folder_that_is_not_a_checkpoint(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run_cli(capsys, "model", "info", "--model", str(tmp_path))
    assert_clean_error(code, err, "not a model checkpoint", "config.json")


def test_config_without_weights(capsys, tmp_path, tiny_checkpoints):
    (tmp_path / "config.json").write_text((tiny_checkpoints["llama"] / "config.json").read_text())
    code, _, err = run_cli(capsys, "model", "info", "--model", str(tmp_path))
    assert_clean_error(code, err, "no weights")


def test_unsupported_architecture_lists_supported(capsys, tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=40).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    code, _, err = run_cli(capsys, "model", "info", "--model", str(tmp_path))
    assert_clean_error(code, err, "'bert' is not supported", "Llama", "Phi3", "GPT-2")
    with pytest.raises(UnsupportedArchitecture):
        load_model(tmp_path)


def test_hub_id_while_offline(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run_cli(capsys, "model", "info", "--model", "no-such-org/no-such-model-xyz")
    assert_clean_error(code, err, "while offline", "no-such-org/no-such-model-xyz")


def test_4bit_without_bitsandbytes(capsys, monkeypatch, tiny_checkpoints):
    monkeypatch.setattr(model_module, "bitsandbytes_available", lambda: False)
    code, _, err = run_cli(capsys, "model", "info", "--4bit", "--model", str(tiny_checkpoints["llama"]))
    assert_clean_error(code, err, "bitsandbytes")


def test_4bit_on_cpu_with_shapes_bitsandbytes_cannot_run(capsys, tiny_checkpoints):
    pytest.importorskip("bitsandbytes")
    # The shared tiny GPT-2 (n_embd 32) is below bitsandbytes' 64-weight quantisation block.
    code, _, err = run_cli(capsys, "model", "info", "--4bit", "--device", "cpu",
                           "--model", str(tiny_checkpoints["gpt2"]))
    assert_clean_error(code, err, "cannot run in 4-bit on CPU", "transformer.h.0.attn.c_attn",
                       "hint: load without --4bit", "multiples of 64")


def test_unknown_dtype(tiny_checkpoints):
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_model(tiny_checkpoints["llama"], dtype="float8")


def test_model_info_reports_sites(capsys, tiny_checkpoints):
    code, out, _ = run_cli(capsys, "model", "info", "--json", "--model", str(tiny_checkpoints["phi3"]))
    info = json.loads(out)
    assert code == 0
    assert info["family"] == "Phi3" and info["n_layers"] == 2 and info["d_ff"] == 48
    assert info["dtype"] == "float32" and info["sites"] == ["g", "s", "a"]
    code, out, _ = run_cli(capsys, "model", "info", "--model", str(tiny_checkpoints["gpt2"]))
    assert "a = s" in out
