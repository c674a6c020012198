"""Benchmark: statistics collection vs a plain forward pass, and memory vs corpus length.

Prints (1) tokens/s of `collect_stats` and of plain HF forwards over the same batches, and their
ratio (target ≥ 0.80), on the demo model and on a larger random Llama (hidden 1024, d_ff 4096,
8 layers) whose forward pass weighs more per neuron; (2) peak resident memory of a fresh process
collecting statistics over a corpus of 1× and 4× the length (target: no growth with length).

    .venv/bin/python bench/stats_throughput.py [--lang zh] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from lsn_explorer.core.data.corpora import corpus_file, read_lines
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.stats.collect import collect_stats, plan_batches


def plan_for(handle, lang: str, copies: int):
    lines = read_lines(corpus_file(lang)) * copies
    return plan_batches(handle, lines, window=128, batch_size=4)


def plain_forward(handle, plan) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for batch in plan.batches:
            handle.model(input_ids=batch, attention_mask=torch.ones_like(batch))
    return time.perf_counter() - start


def stats_pass(handle, plan, site: str) -> float:
    start = time.perf_counter()
    collect_stats(handle, plan, site=site)
    return time.perf_counter() - start


def larger_random_llama(demo):
    """A random Llama with the demo tokenizer: same vocabulary, 1024 hidden, 4096 d_ff, 8 layers."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from lsn_explorer.core.model.architectures import architecture_for
    from lsn_explorer.core.model.loading import ModelHandle

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=demo.model.config.vocab_size, hidden_size=1024, intermediate_size=4096,
                         num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=16,
                         max_position_embeddings=512)
    model = LlamaForCausalLM(config).eval()
    return ModelHandle(model, demo.tokenizer, architecture_for(config), "random-llama-1024x8", "float32")


def compare(handle, plan, repeat: int, sites=("s", "g", "a")) -> None:
    plain_forward(handle, plan)  # warm-up
    for site in sites:
        plain = min(plain_forward(handle, plan) for _ in range(repeat))
        stats = min(stats_pass(handle, plan, site) for _ in range(repeat))
        print(f"  site {site}: plain forward {plan.total_tokens / plain:8.0f} tok/s | stats "
              f"{plan.total_tokens / stats:8.0f} tok/s | ratio {plain / stats:.2f} (target >= 0.80)")


def child(lang: str, copies: int) -> None:
    handle = load_model()
    plan = plan_for(handle, lang, copies)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    collect_stats(handle, plan, site="s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"tokens": plan.total_tokens, "peak_mib": peak / 1024, "before_mib": before / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.lang, args.child)
        return
    torch.set_num_threads(2)
    handle = load_model()
    plan = plan_for(handle, args.lang, 2)
    print(f"demo model ({handle.n_layers}×{handle.d_ff}), {args.lang}, {plan.total_tokens} tokens in batches of 4×128")
    compare(handle, plan, args.repeat)
    larger = larger_random_llama(handle)
    plan = plan_for(larger, args.lang, 1)
    print(f"random Llama ({larger.n_layers}×{larger.d_ff}, hidden 1024), {plan.total_tokens} tokens")
    compare(larger, plan, 1, sites=("s",))
    rows = []
    for copies in (1, 4):
        out = subprocess.run([sys.executable, __file__, "--lang", args.lang, "--child", str(copies)],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print(f"{rows[-1]['tokens']:>7} tokens: peak RSS {rows[-1]['peak_mib']:.0f} MiB")
    print(f"peak memory ratio 4x corpus / 1x corpus: {rows[1]['peak_mib'] / rows[0]['peak_mib']:.2f} (target ~1.00)")


if __name__ == "__main__":
    main()
