"""Benchmark: cost of interventions, printed as ratios (targets from DESIGN.md).

1. Intervened forward / plain forward over the same batches (target ≤ 1.10), with 1 % of the
   neurons overwritten by a per-neuron value at every position (one indexed write per layer).
2. Side-by-side generation (baseline + intervened rows in one batched run) / one plain
   generation of the same length (target ≤ 1.3), and its two factors: two plain rows in one run /
   one row (the second row's compute: near 1 where decoding is memory-bound, as on a GPU, more
   on a CPU) and one intervened row / one plain row (the writes).
On the demo model and on a larger random Llama (hidden 512, 8 layers) with the demo tokenizer.

    .venv/bin/python bench/intervention_overhead.py [--repeat 5] [--tokens 32]
"""

from __future__ import annotations

import argparse
import time

import torch

from lsn_explorer.core.data.corpora import corpus_file, read_lines
from lsn_explorer.core.generate import generate
from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.core.model.backend import forward_logits
from lsn_explorer.core.model.loading import load_model


def one_percent_spec(handle, seed: int = 0) -> str:
    """1 % of all neurons, spread over the layers, set to a constant (no statistics needed)."""
    g = torch.Generator().manual_seed(seed)
    n = max(1, round(0.01 * handle.n_layers * handle.d_ff))
    flat = torch.randperm(handle.n_layers * handle.d_ff, generator=g)[:n]
    return ",".join(f"{int(i) // handle.d_ff}.{int(i) % handle.d_ff}" for i in flat) + "=0.1"


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def batches(handle, n_batches: int = 4, batch: int = 4, window: int = 128):
    ids = handle.tokenizer("\n".join(read_lines(corpus_file("en"))), return_tensors="pt")["input_ids"][0]
    window = min(window, handle.model.config.max_position_embeddings)
    out = []
    for k in range(n_batches):
        chunk = ids[k * batch * window:(k + 1) * batch * window].view(batch, window)
        out.append({"input_ids": chunk, "attention_mask": torch.ones_like(chunk)})
    return out


def measure(handle, name: str, repeat: int, tokens: int) -> None:
    plan = resolve([parse_intervention(one_percent_spec(handle))], handle)
    data = batches(handle)

    def forward(p):
        return lambda: [forward_logits(handle, b, p) for b in data]

    plain = timed(forward(None), repeat)
    intervened = timed(forward(plan), repeat)
    prompt = "The old library in the town"
    one = timed(lambda: generate(handle, prompt, [None], max_new_tokens=tokens), repeat)
    both = timed(lambda: generate(handle, prompt, [None, plan], max_new_tokens=tokens), repeat)
    # Where the side-by-side ratio goes: the second row's compute, and the writes themselves.
    two_plain = timed(lambda: generate(handle, prompt, [None, None], max_new_tokens=tokens), repeat)
    one_edited = timed(lambda: generate(handle, prompt, [plan], max_new_tokens=tokens), repeat)
    print(f"{name}: {plan.neuron_count()} neurons overwritten (1 %)")
    print(f"  forward  plain {plain * 1e3:7.1f} ms | intervened {intervened * 1e3:7.1f} ms | "
          f"ratio {intervened / plain:.2f} (target <= 1.10)")
    print(f"  generate one row {one * 1e3:7.1f} ms | compare (2 rows, 1 run) {both * 1e3:7.1f} ms | "
          f"ratio {both / one:.2f} (target <= 1.3)  [{tokens} new tokens]")
    print(f"    of which: two plain rows / one {two_plain / one:.2f} (the second row's compute) | "
          f"one intervened row / one plain {one_edited / one:.2f} (the writes)")


def larger_random_llama(demo):
    from transformers import LlamaConfig, LlamaForCausalLM

    from lsn_explorer.core.model.architectures import architecture_for
    from lsn_explorer.core.model.loading import ModelHandle

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=demo.model.config.vocab_size, hidden_size=512, intermediate_size=1536,
                         num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=512, bos_token_id=demo.tokenizer.bos_token_id,
                         eos_token_id=demo.tokenizer.eos_token_id)
    model = LlamaForCausalLM(config).eval()
    return ModelHandle(model, demo.tokenizer, architecture_for(config), "random-llama-512x8", "float32")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    demo = load_model(device="cpu")
    measure(demo, f"demo model ({demo.n_layers}×{demo.d_ff})", args.repeat, args.tokens)
    larger = larger_random_llama(demo)
    measure(larger, f"random Llama ({larger.n_layers}×{larger.d_ff}, hidden 512)", args.repeat, args.tokens)


if __name__ == "__main__":
    main()
