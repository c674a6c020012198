"""Benchmark: neuron-masked LoRA vs plain LoRA on the same modules — training tokens/s and peak memory.

Both variants put LoRA on gate/up/down of every layer of the demo model (with 1 % of each layer's
neurons selected, so the masked variant has MLP LoRA in every layer too, and both train the same
parameters); the masked one adds the row/column zeroing and the gradient hooks of
`core.finetune.masks`. Each variant runs in a fresh process (so peak resident memory is its own),
the two alternate, and the median of `--repeat` runs is compared: tokens/s ratio (target ≥ 0.9)
and peak-memory ratio (RSS on CPU; allocated GPU memory on CUDA).

    .venv/bin/python bench/finetune_throughput.py [--steps 30] [--repeat 3] [--batch 8] [--max-len 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

WARMUP = 3  # optimizer steps not timed (allocations, first-call overheads)


def one_run(variant: str, steps: int, batch: int, max_len: int) -> dict[str, float]:
    """Train `steps` steps of `variant` (masked | plain) in this process; tokens/s and peak memory."""
    import torch

    from lsn_explorer.core.finetune.config import BETAS, FinetuneSpec
    from lsn_explorer.core.finetune.data import collate, training_examples
    from lsn_explorer.core.finetune.masks import NeuronMask, add_masked_lora, lora_config, lora_targets
    from lsn_explorer.core.finetune.train import _loss, step_batches
    from lsn_explorer.core.model.loading import load_model

    torch.manual_seed(0)
    handle = load_model(device="auto")
    spec = FinetuneSpec(task="lm", train_lang="zh", neurons="bench:zh", batch=batch, max_len=max_len,
                        max_steps=steps + WARMUP)
    per_layer = max(1, handle.d_ff // 100)
    pairs = torch.stack([torch.tensor([layer, i]) for layer in range(handle.n_layers)
                         for i in torch.randperm(handle.d_ff)[:per_layer].tolist()])
    mask = NeuronMask("bench:zh", handle.n_layers, handle.d_ff, pairs)
    if variant == "masked":
        model, _, _ = add_masked_lora(handle, spec, mask)
    else:
        from peft import get_peft_model

        model = get_peft_model(handle.model, lora_config(spec, lora_targets(handle, spec, mask), handle.head))
    examples, _ = training_examples(handle, spec)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, betas=BETAS, weight_decay=spec.weight_decay)
    pad, cuda = handle.tokenizer.pad_token_id, handle.device.type == "cuda"
    model.train()
    tokens, start = 0, 0.0
    for step in range(steps + WARMUP):
        if step == WARMUP:
            if cuda:
                torch.cuda.synchronize()
            tokens, start = 0, time.perf_counter()
        for indices in step_batches(step, len(examples), spec):
            group = collate([examples[i] for i in indices], pad, handle.device)
            (_loss(model, group) / 1000).backward()
            tokens += int(group["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(params, spec.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"tokens_per_s": tokens / seconds, "peak_bytes": float(peak),
            "trainable": float(sum(p.numel() for p in params))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--child", choices=("masked", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child, args.steps, args.batch, args.max_len)))
        return
    runs: dict[str, list[dict[str, float]]] = {"masked": [], "plain": []}
    for round_ in range(args.repeat):
        for variant in (("plain", "masked") if round_ % 2 else ("masked", "plain")):
            out = subprocess.run([sys.executable, __file__, "--child", variant, "--steps", str(args.steps),
                                  "--batch", str(args.batch), "--max-len", str(args.max_len)],
                                 capture_output=True, text=True, check=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    median = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
    m, p = median["masked"], median["plain"]
    assert m["trainable"] == p["trainable"], "both variants must train the same parameters"
    print(f"demo model, LoRA r 8 on gate/up/down of every layer, batch {args.batch} × ≤{args.max_len} tokens, "
          f"{args.steps} timed steps, median of {args.repeat} runs per variant")
    for name, row in (("plain LoRA", p), ("masked LoRA", m)):
        print(f"  {name:<12} {row['tokens_per_s']:>9,.0f} tokens/s   peak {row['peak_bytes'] / 2**20:>7,.0f} MiB   "
              f"{row['trainable']:,.0f} trainable parameters")
    print(f"tokens/s ratio masked / plain: {m['tokens_per_s'] / p['tokens_per_s']:.3f} (target ≥ 0.9)")
    print(f"peak memory ratio masked / plain: {m['peak_bytes'] / p['peak_bytes']:.3f}")


if __name__ == "__main__":
    main()
