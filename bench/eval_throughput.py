"""Benchmark: evaluation throughput (samples/s), printed as ratios (targets from issue 13).

For XNLI (the demo samples, verbalised options) and XQuAD (greedy answers):
1. batched scoring with 1 % of the neurons overwritten / the same batched scoring with no
   intervention (target ≥ 0.8);
2. batched scoring with the intervention / a one-sample-at-a-time loop through `score_sample`,
   what `lsn-explorer score` does per sample (target ≥ 10).
On the demo model and on a larger random Llama (hidden 512, 8 layers) with the demo tokenizer.

    .venv/bin/python bench/eval_throughput.py [--batch-size 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from intervention_overhead import larger_random_llama, one_percent_spec

from lsn_explorer.core.evals.runner import batch_order
from lsn_explorer.core.evals.scorers import load_samples, score_batch
from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.tasks.registry import score_sample


def rate(fn, n: int, repeat: int) -> float:
    """Best samples per second over `repeat` runs (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def measure(handle, name: str, task: str, lang: str, n: int, batch_size: int, repeat: int) -> None:
    plan = resolve([parse_intervention(one_percent_spec(handle))], handle)
    pairs = batch_order(task, load_samples(task, lang, None, "test", n))
    n = len(pairs)

    def batched(p):
        return lambda: [score_batch(handle, task, lang, pairs[i:i + batch_size], p) for i in range(0, n, batch_size)]

    def one_by_one():
        return [score_sample(handle, task, lang, example, [plan], sample=index) for index, example in pairs]

    plain = rate(batched(None), n, repeat)
    intervened = rate(batched(plan), n, repeat)
    single = rate(one_by_one, n, max(1, repeat - 2))
    print(f"{name} · {task} {lang}: {n} samples, batch {batch_size}, {plan.neuron_count()} neurons overwritten (1 %)")
    print(f"  batched plain {plain:7.1f}/s | batched intervened {intervened:7.1f}/s | one at a time {single:7.1f}/s")
    print(f"  intervened / plain {intervened / plain:.2f} (target >= 0.8) | "
          f"batched / one at a time {intervened / single:.1f}x (target >= 10)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    demo = load_model(device="cpu")
    larger = larger_random_llama(demo)
    for handle, name in ((demo, f"demo ({demo.n_layers}×{demo.d_ff})"),
                         (larger, f"random Llama ({larger.n_layers}×{larger.d_ff}, hidden 512)")):
        measure(handle, name, "xnli", "en", 64, args.batch_size, args.repeat)
        measure(handle, name, "xquad", "en", 32, args.batch_size, args.repeat)


if __name__ == "__main__":
    main()
