"""Benchmark: statistics collection vs a plain forward pass, and memory vs corpus length.

Prints (1) tokens/s of `collect_stats` and of plain HF forwards over the same batches, and their
ratio (target ≥ 0.80 on the demo model, ≥ 0.90 on the deep models), on the demo model (6 layers,
d_ff 768), a wide random Llama (8 layers, hidden 1024, d_ff 4096) and two deep random Llamas
(32 layers: hidden 256 with d_ff 1024, and hidden 512 with d_ff 1792, Llama-3-8B's proportions);
(2) the grid calibration inside each stats pass, a cost paid once per language whatever the
corpus length, and the ratio without it (what a corpus long enough to make it negligible sees,
such as the papers' 10⁸ tokens per language); (3) peak resident memory of a fresh process
collecting statistics over a corpus of 1× and 4× the length (target: no growth with length).

The plain side is the whole causal LM, LM head included, on the same batches; statistics stop the
model at the last site read (no LM head: it produces nothing statistics use), so the ratio
against the decoder stack alone (embeddings, layers, final norm) is printed beside it. Both run
with the same torch thread count (`--threads`, default 1: on a shared 2-core machine a second
thread makes small elementwise ops erratic, and the ratio must compare like with like). Each
figure is the best of `--repeat` runs; the load averages before and after are printed with them.

    .venv/bin/python bench/stats_throughput.py [--lang zh] [--repeat 2] [--threads 1] [--models demo,deep,...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from lsn_explorer.core.data.corpora import corpus_file, read_lines
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.stats.accumulator import HistogramGrid
from lsn_explorer.core.stats.collect import CALIBRATION_TOKENS, _read_layers, collect_stats, plan_batches

# The random models are slow on a CPU; their corpus is cut so the bench runs in minutes. The cap
# stays well above the calibration sample so the streaming path dominates.
RANDOM_MODELS = {  # name: (hidden, d_ff, layers, heads, token cap, runs at most)
    "wide": (1024, 4096, 8, 16, 4096, 1),
    "deep": (256, 1024, 32, 4, 8192, 2),
    # Deep with Llama-3-8B's proportions (d_ff = 3.5 × hidden): counting costs per value while the
    # forward costs per value × hidden, so the thin "deep" above is the hardest case for the ratio.
    "deep-llama": (512, 1792, 32, 8, 8192, 1),
}
DEEP = ("deep", "deep-llama")  # target 0.90


def plan_for(handle, lang: str, copies: int, window: int = 128, max_tokens: int | None = None):
    lines = read_lines(corpus_file(lang)) * copies
    return plan_batches(handle, lines, window=window, batch_size=4, max_tokens=max_tokens)


def plain_forward(handle, plan) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for batch in plan.batches:
            handle.model(input_ids=batch, attention_mask=torch.ones_like(batch))
    return time.perf_counter() - start


def decoder_forward(handle, plan) -> float:
    """The decoder stack alone (embeddings, layers, final norm; no LM head), over the same batches."""
    start = time.perf_counter()
    with torch.no_grad():
        for batch in plan.batches:
            handle.model.base_model(input_ids=batch, attention_mask=torch.ones_like(batch))
    return time.perf_counter() - start


def stats_pass(handle, plan, site: str) -> float:
    start = time.perf_counter()
    collect_stats(handle, plan, site=site)
    return time.perf_counter() - start


def calibration_time(handle, plan, site: str) -> float:
    """Seconds `collect_stats` spends setting the grid (the forward passes over the calibration
    batches are not counted: they feed the statistics as well)."""
    n, tokens = 0, 0
    while n < len(plan.batches) and tokens < CALIBRATION_TOKENS:
        tokens += plan.batches[n].numel()
        n += 1
    layers = [_read_layers(handle, plan.batches[k], site) for k in range(n)]
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # the reads are queued on a GPU; the grid's end syncs by itself
    start = time.perf_counter()
    HistogramGrid.calibrate([torch.cat(rows) for rows in zip(*layers)])
    return time.perf_counter() - start


def random_llama(demo, hidden: int, d_ff: int, layers: int, heads: int):
    """A random Llama with the demo tokenizer (same vocabulary)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from lsn_explorer.core.model.architectures import architecture_for
    from lsn_explorer.core.model.loading import ModelHandle

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=demo.model.config.vocab_size, hidden_size=hidden, intermediate_size=d_ff,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=512)
    model = LlamaForCausalLM(config).eval()
    return ModelHandle(model, demo.tokenizer, architecture_for(config), f"random-llama-{hidden}x{layers}", "float32")


def compare(handle, plan, repeat: int, target: float, sites=("s", "g", "a")) -> None:
    plain_forward(handle, plan)  # warm-up
    stats_pass(handle, plan_batches_of(plan, 1), sites[0])  # warm-up: builds the nnsight wrapper
    for site in sites:
        plain = min(plain_forward(handle, plan) for _ in range(repeat))
        stats = min(stats_pass(handle, plan, site) for _ in range(repeat))
        decoder = min(decoder_forward(handle, plan) for _ in range(repeat))
        calib = calibration_time(handle, plan, site)
        print(f"  site {site}: plain forward {plan.total_tokens / plain:8.0f} tok/s | stats "
              f"{plan.total_tokens / stats:8.0f} tok/s | ratio {plain / stats:.2f} (target >= {target:.2f}) | "
              f"vs the decoder stack alone {decoder / stats:.2f} | grid calibration {calib:.2f} s of {stats:.2f} s | "
              f"ratio without it (a long corpus) {plain / (stats - calib):.2f}",
              flush=True)


def plan_batches_of(plan, n: int):
    """The first `n` batches of a plan, as a plan."""
    from dataclasses import replace

    batches = plan.batches[:n]
    return replace(plan, batches=batches, total_tokens=sum(b.numel() for b in batches))


def child(lang: str, copies: int, threads: int) -> None:
    torch.set_num_threads(threads)
    handle = load_model()
    plan = plan_for(handle, lang, copies)
    before = peak_rss_mib()
    collect_stats(handle, plan, site="s")
    print(json.dumps({"tokens": plan.total_tokens, "peak_mib": peak_rss_mib(), "before_mib": before}))


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries that
    over from the parent through fork and exec, so a child started by a large bench process would
    report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="demo," + ",".join(RANDOM_MODELS),
                        help="comma-separated: demo and/or " + ", ".join(RANDOM_MODELS) + " (default: all), then memory")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.lang, args.child, args.threads)
        return
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {load_average()}")
    models = args.models.split(",")
    unknown = sorted(set(models) - {"demo", *RANDOM_MODELS})
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from demo, {', '.join(RANDOM_MODELS)}")
    handle = load_model()
    if "demo" in models:
        plan = plan_for(handle, args.lang, 2)
        print(f"demo model ({handle.n_layers}×{handle.d_ff}), {args.lang}, {plan.total_tokens} tokens in batches of 4×128")
        compare(handle, plan, args.repeat, 0.80)
    for name, (hidden, d_ff, layers, heads, cap, runs) in RANDOM_MODELS.items():
        if name not in models:
            continue
        model = random_llama(handle, hidden, d_ff, layers, heads)
        plan = plan_for(model, args.lang, 1, window=512, max_tokens=cap)
        print(f"random Llama, {name} ({layers}×{d_ff}, hidden {hidden}), {plan.total_tokens} tokens in batches of 4×512")
        compare(model, plan, min(args.repeat, runs), 0.90 if name in DEEP else 0.80, sites=("s",))
        del model
    rows = []
    for copies in (1, 4):
        out = subprocess.run([sys.executable, __file__, "--lang", args.lang, "--child", str(copies),
                              "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print(f"{rows[-1]['tokens']:>7} tokens: peak RSS {rows[-1]['peak_mib']:.0f} MiB")
    print(f"peak memory ratio 4x corpus / 1x corpus: {rows[1]['peak_mib'] / rows[0]['peak_mib']:.2f} (target ~1.00)")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
