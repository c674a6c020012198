"""Tiny models built from config, one per architecture family, saved as real checkpoints,
and a plain-PyTorch-hook reader of the neuron sites to check the engine against.

No network: weights are random (seeded), the tokenizer is a character-level WordLevel model.
Used by unit tests that need a loadable checkpoint of a given family.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lsn_explorer.core.model.architectures import resolve

FAMILY_CONFIGS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 8}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 8}),
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"head_dim": 8}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"pad_token_id": 0}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {}),
}
# The same families with a sequence-classification head (transformers' own class names).
CLASSIFIER_CLASSES = {
    "llama": "LlamaForSequenceClassification",
    "mistral": "MistralForSequenceClassification",
    "qwen2": "Qwen2ForSequenceClassification",
    "qwen3": "Qwen3ForSequenceClassification",
    "gemma2": "Gemma2ForSequenceClassification",
    "gemma3_text": "Gemma3TextForSequenceClassification",
    "phi3": "Phi3ForSequenceClassification",
    "gpt2": "GPT2ForSequenceClassification",
}
# Sizes for 4-bit (NF4) tests. The shared tiny models (hidden 32, d_ff 48) are below what
# bitsandbytes' CPU kernels take: every quantised layer needs in_features a multiple of the block
# size (64) and out_features a multiple of 32 (see `CPU_4BIT_ROWS` in lsn_explorer/core/model.py).
# With 4 heads of 16 and 2 KV heads, q/k/v/o and the MLP all fit.
FOUR_BIT_SIZES = {"hidden_size": 64, "intermediate_size": 128}
ALPHABET = "abcdefghijklmnopqrstuvwxyz .,"
PAD_ID = len(ALPHABET) + 1  # "<eos>", which the tiny tokenizer also pads with


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(ALPHABET)}
    vocab |= {"<unk>": len(vocab), "<eos>": len(vocab) + 1}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>", pad_token="<eos>"
    )


def tiny_model(family: str, seed: int = 0, *, model_class: str | None = None, **config_overrides):
    """A tiny `family` model (its causal LM unless `model_class` names another head class);
    `config_overrides` go into the config (num_labels, id2label, pad_token_id, ...)."""
    import transformers

    config_name, model_name, extra = FAMILY_CONFIGS[family]
    vocab = len(ALPHABET) + 2
    if family == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_inner=48, n_positions=64, **config_overrides
        )
    else:
        kwargs = dict(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
        config = getattr(transformers, config_name)(**(kwargs | extra | config_overrides))
    torch.manual_seed(seed)
    model = getattr(transformers, model_class or model_name)(config).eval()
    # Random init leaves some families with all-zero norms or tiny weights; perturb every
    # parameter so each site carries distinct, non-trivial values.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


def save_tiny_checkpoint(family: str, folder: Path, **config_overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny_model(family, **config_overrides).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def hook_reference(model, arch, inputs, d_ff):
    """Sites captured with plain PyTorch forward hooks (independent of nnsight)."""
    captured = {"g": [], "s": [], "a": []}
    handles = []
    for block in resolve(model, arch.layers):
        mlp = getattr(block, arch.mlp)

        def on_gate(_m, _i, out):
            captured["g"].append((out[..., :d_ff] if arch.fused_gate_up else out).detach().clone())

        def on_act(_m, _i, out):
            captured["s"].append(out.detach().clone())

        def on_down(_m, args):
            captured["a"].append(args[0].detach().clone())

        handles += [
            getattr(mlp, arch.gate).register_forward_hook(on_gate),
            getattr(mlp, arch.act).register_forward_hook(on_act),
            getattr(mlp, arch.down).register_forward_pre_hook(on_down),
        ]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return captured


# Three short parallel languages for job and distributed runs on the tiny checkpoints.
PARALLEL_LINES = {
    "en": ["the cat sleeps in the sun.", "we walk to the river.", "a dog runs fast.", "rain falls at night."],
    "fr": ["le chat dort au soleil.", "nous marchons au fleuve.", "un chien court vite.", "la pluie tombe."],
    "es": ["el gato duerme al sol.", "vamos al rio.", "un perro corre.", "la lluvia cae de noche."],
}


def write_parallel_corpus(folder: Path, repeat: int = 8) -> Path:
    """`<lang>.txt` files of PARALLEL_LINES, each line block repeated `repeat` times."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang, lines in PARALLEL_LINES.items():
        (folder / f"{lang}.txt").write_text("\n".join(lines * repeat) + "\n", encoding="utf-8")
    return folder
