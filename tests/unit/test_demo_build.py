"""`demo build` is deterministic and writes a checkpoint the ordinary loader reads."""

from __future__ import annotations

import hashlib
import json
import math

from lsn_explorer.core.data.corpora import load_parallel
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.demo.build import DemoRecipe, build_demo, char_unigram_bits, evaluate_demo, prompt_from

TINY = DemoRecipe(vocab_size=400, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2,
                  seq_len=32, batch_size=4, steps=4, warmup_steps=2)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.name != "build.json"}


def test_build_is_deterministic_and_loadable(tmp_path):
    first = build_demo(tmp_path / "a", recipe=TINY)
    second = build_demo(tmp_path / "b", recipe=TINY)
    assert first["complete"] and first["steps_done"] == 4
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(_digest(tmp_path / "a"))
    manifest = json.loads((tmp_path / "a" / "build.json").read_text())
    assert manifest["final_loss_mean_last_20"] == second["final_loss_mean_last_20"]

    handle = load_model(tmp_path / "a")
    assert handle.arch.family == "Llama" and handle.n_layers == 2 and handle.d_ff == 64
    ids = handle.tokenizer("Bonjour à tous")["input_ids"]
    assert ids[0] == handle.tokenizer.bos_token_id
    assert handle.tokenizer.decode(ids, skip_special_tokens=True) == "Bonjour à tous"


def test_time_cap_marks_the_build_incomplete(tmp_path):
    manifest = build_demo(tmp_path / "c", recipe=TINY, minutes=0.0)
    assert not manifest["complete"] and manifest["steps_done"] == 0


def test_prompt_is_the_first_half_of_the_sentence():
    assert prompt_from("one two three four five six") == "one two three"
    assert prompt_from("我奶奶把备用钥匙放在前门") == "我奶奶把备用"
    held = load_parallel(["en"]).split("heldout").lines["en"][0]
    assert held.startswith(prompt_from(held))


def test_char_unigram_floor_by_hand():
    # train "aab": a=2, b=1, 3 characters, alphabet 2 + 1 unseen slot → denominators 6
    assert math.isclose(char_unigram_bits(["aab"], ["a"]), -math.log2(3 / 6))
    assert math.isclose(char_unigram_bits(["aab"], ["bz"]), -(math.log2(2 / 6) + math.log2(1 / 6)) / 2)
    assert math.isnan(char_unigram_bits(["aab"], []))


def test_evaluation_reports_bits_per_char_from_the_same_likelihood(tmp_path):
    from lsn_explorer.core.tasks.perplexity import line_perplexity

    build_demo(tmp_path / "m", recipe=TINY)
    handle = load_model(tmp_path / "m")
    (check,) = evaluate_demo(handle, ["en"], prompts=1, max_new_tokens=2)
    held = load_parallel(["en"]).split("heldout").lines["en"]
    ppl = line_perplexity(handle, held)
    # bits/char and PPL are the same cross-entropy, normalised per character vs per token
    expected = ppl.n_tokens * math.log2(ppl.value) / sum(map(len, held))
    assert math.isclose(check.bits_per_char, expected, rel_tol=1e-9)
    train = load_parallel(["en"]).split("train").lines["en"]
    assert check.unigram_bits_per_char == char_unigram_bits(train, held)
