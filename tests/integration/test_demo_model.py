"""The bundled demo model: a standard checkpoint that behaves like a multilingual LM."""

from __future__ import annotations

import json

import pytest
from tests_langs import CORPUS_LANGS

from lsn_explorer.core.data.corpora import load_parallel
from lsn_explorer.core.data.languages import get_language
from lsn_explorer.core.data.writing import script_share
from lsn_explorer.core.generate import continue_text
from lsn_explorer.core.model.loading import DEMO_MODEL_DIR
from lsn_explorer.demo.build import prompt_from


def test_checkpoint_files_size_and_manifest():
    files = {p.name for p in DEMO_MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "build.json"} <= files
    total = sum(p.stat().st_size for p in DEMO_MODEL_DIR.iterdir())
    assert total <= 30 * 2**20
    manifest = json.loads((DEMO_MODEL_DIR / "build.json").read_text())
    assert manifest["complete"] and manifest["languages"] == sorted(CORPUS_LANGS)
    config = json.loads((DEMO_MODEL_DIR / "config.json").read_text())
    assert config["model_type"] == "llama" and config["hidden_act"] == "silu"


def test_loads_like_any_checkpoint(demo):
    assert demo.arch.family == "Llama" and demo.quantization is None
    assert demo.n_layers == 6 and demo.d_ff == 768
    ids = demo.tokenizer("नमस्ते दुनिया")["input_ids"]
    assert ids[0] == demo.tokenizer.bos_token_id
    assert demo.tokenizer.decode(ids, skip_special_tokens=True) == "नमस्ते दुनिया"


@pytest.mark.parametrize("lang", CORPUS_LANGS)
def test_heldout_continuations_stay_in_the_prompt_script(demo, lang):
    heldout = load_parallel([lang]).split("heldout").lines[lang]
    script = get_language(lang).script
    shares = [script_share(continue_text(demo, prompt_from(line), max_new_tokens=24), script)
              for line in heldout[:5]]
    assert sum(share >= 0.8 for share in shares) >= 4, shares
