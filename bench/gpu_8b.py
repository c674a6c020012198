"""Issue 17's device check, prepared for a session that is lent a GPU: on an 8B-shaped random Llama
(32 layers, hidden 4096, d_ff 14336, 32 query / 8 key-value heads, Llama-3-8B's shapes) in
bfloat16 and in 4-bit NF4, each as a ratio against the plain run on the same card:

1. statistics tokens/s (`collect_stats`, site s) / plain forward tokens/s over the same batches,
   with the grid calibration time and the ratio without it (targets ≥ 0.90 deep, DESIGN.md ≥ 0.80);
2. intervened forward (1 % of the neurons overwritten at every position) / plain forward (≤ 1.10);
3. side-by-side generation (baseline + intervened row, one batched run) / one plain generation
   of the same length (≤ 1.3), with its two factors as in intervention_overhead.py.

The weights are random (nothing can be downloaded) with the demo tokenizer's 8,000-token
vocabulary: the layers are Llama-3-8B's, the embeddings and LM head are ~1/16 of its 128k-token
ones, so the plain forward here is ~7 % cheaper than a real 8B's and the ratios slightly
conservative. The model is written once as a checkpoint folder (bfloat16 safetensors, ~14 GB)
so that both precisions load through `load_model`, as a user's model does.

    python bench/gpu_8b.py [--tokens 32768] [--new-tokens 32] [--out DIR]
    python bench/gpu_8b.py --shape tiny   # the same code on a CPU in a minute: how it is checked here

Results print as they come and are written to `<out>/gpu_8b.json` (default: $OUT when set,
else the current folder) with the device's name, torch's version and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from intervention_overhead import one_percent_spec  # noqa: E402  (a sibling bench script)
from intervention_overhead import timed as best_of  # noqa: E402
from stats_throughput import calibration_time, load_average, plan_for  # noqa: E402

from lsn_explorer.core.generate import generate  # noqa: E402
from lsn_explorer.core.interventions.resolve import resolve  # noqa: E402
from lsn_explorer.core.interventions.spec import parse_intervention  # noqa: E402
from lsn_explorer.core.model.backend import forward_logits  # noqa: E402
from lsn_explorer.core.model.loading import load_model  # noqa: E402
from lsn_explorer.core.stats.collect import collect_stats  # noqa: E402

SHAPES = {  # name: (hidden, d_ff, layers, query heads, key-value heads)
    "8b": (4096, 14336, 32, 32, 8),
    # Small enough for a CPU, 4-bit included (bitsandbytes' CPU kernels want outputs in multiples
    # of 32 and inputs in multiples of the quantisation block).
    "tiny": (128, 448, 2, 4, 2),
}


def write_checkpoint(shape: str, folder: Path, device: str) -> None:
    """A random Llama of `shape` in bfloat16 with the demo tokenizer, saved to `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, d_ff, layers, heads, kv_heads = SHAPES[shape]
    tokenizer = load_model(device="cpu").tokenizer
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=d_ff,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, torch_dtype="bfloat16")
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # 8B parameters are built in bf16 directly, on the device
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model


def timed(run: Callable[[], Any], repeat: int) -> float:
    """intervention_overhead's best-of-`repeat` timing, each run ending with the device's queue
    drained (so the next one starts on an empty queue too)."""
    def run_synced() -> None:
        run()
        sync()

    return best_of(run_synced, repeat)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def on_device(handle, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    ids = batch.to(handle.device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def measure(handle, args: argparse.Namespace) -> dict[str, float]:
    plan = plan_for(handle, "zh", 50, window=512, max_tokens=args.tokens)
    inputs = [on_device(handle, batch) for batch in plan.batches]

    def plain() -> None:
        with torch.no_grad():
            for batch in inputs:
                handle.model(**batch)

    forward_s = timed(plain, args.repeat)
    stats_s = timed(lambda: collect_stats(handle, plan, site="s"), args.repeat)
    calibration_s = calibration_time(handle, plan, "s")
    out = {"tokens": plan.total_tokens, "forward_tok_s": plan.total_tokens / forward_s,
           "stats_tok_s": plan.total_tokens / stats_s, "stats_ratio": forward_s / stats_s,
           "calibration_s": calibration_s, "stats_ratio_without_calibration": forward_s / (stats_s - calibration_s)}
    say(f"  statistics: plain forward {out['forward_tok_s']:.0f} tok/s | stats {out['stats_tok_s']:.0f} tok/s | "
        f"ratio {out['stats_ratio']:.2f} (target >= 0.90) | calibration {calibration_s:.2f} s of {stats_s:.2f} s | "
        f"without it {out['stats_ratio_without_calibration']:.2f}  [{plan.total_tokens} tokens, 4×512 batches]")

    edits = resolve([parse_intervention(one_percent_spec(handle))], handle)
    few = inputs[:4]
    plain_s = timed(lambda: [forward_logits(handle, batch) for batch in few], args.repeat)
    edited_s = timed(lambda: [forward_logits(handle, batch, edits) for batch in few], args.repeat)
    out["intervened_forward_ratio"] = edited_s / plain_s
    say(f"  forward: plain {plain_s * 1e3:.1f} ms | intervened ({edits.neuron_count()} neurons, 1 %) "
        f"{edited_s * 1e3:.1f} ms | ratio {out['intervened_forward_ratio']:.2f} (target <= 1.10)")

    prompt = "The old library in the town"
    one_s = timed(lambda: generate(handle, prompt, [None], max_new_tokens=args.new_tokens), args.repeat)
    both_s = timed(lambda: generate(handle, prompt, [None, edits], max_new_tokens=args.new_tokens), args.repeat)
    two_plain_s = timed(lambda: generate(handle, prompt, [None, None], max_new_tokens=args.new_tokens), args.repeat)
    one_edited_s = timed(lambda: generate(handle, prompt, [edits], max_new_tokens=args.new_tokens), args.repeat)
    out |= {"side_by_side_ratio": both_s / one_s, "two_plain_rows_ratio": two_plain_s / one_s,
            "one_intervened_row_ratio": one_edited_s / one_s}
    say(f"  generation: one row {one_s * 1e3:.0f} ms | side by side (2 rows, 1 run) {both_s * 1e3:.0f} ms | "
        f"ratio {out['side_by_side_ratio']:.2f} (target <= 1.3)  [{args.new_tokens} new tokens]; of which "
        f"two plain rows / one {out['two_plain_rows_ratio']:.2f}, one intervened row / one plain "
        f"{out['one_intervened_row_ratio']:.2f}")
    return out


def say(text: str) -> None:
    print(text, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="8b")
    parser.add_argument("--tokens", type=int, default=32768, help="tokens of the statistics pass")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per generation")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--precisions", default="bf16,nf4", help="comma-separated: bf16, nf4")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    card = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    say(f"{card}, torch {torch.__version__}, shape {args.shape} {SHAPES[args.shape]}, load average {load_average()}")
    results: dict[str, Any] = {"device": card, "torch": torch.__version__, "shape": args.shape,
                               "load_average_before": load_average()}
    folder = Path(tempfile.mkdtemp(prefix="lsn-gpu-8b-"))
    try:
        start = time.perf_counter()
        write_checkpoint(args.shape, folder, device)
        say(f"checkpoint written in {time.perf_counter() - start:.0f} s")
        for precision in args.precisions.split(","):
            start = time.perf_counter()
            handle = load_model(str(folder), four_bit=precision == "nf4", device=device,
                                dtype="bfloat16")
            say(f"{precision}: loaded in {time.perf_counter() - start:.0f} s ({handle.n_layers}×{handle.d_ff})")
            results[precision] = measure(handle, args)
            del handle
            if device == "cuda":
                torch.cuda.empty_cache()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        results["load_average_after"] = load_average()
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_8b.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
