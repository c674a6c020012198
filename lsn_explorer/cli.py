"""The `lsn-explorer` command line: argument parsing and printing, no science.

Each sub-command parses its arguments, calls one `core` function and prints the result. Heavy
libraries (torch, transformers, nnsight) are imported inside the commands so `--help` is instant.
An `LsnError` becomes `error: ...` / `hint: ...` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from lsn_explorer import __version__
from lsn_explorer.errors import LsnError

DEMO_LANGS = ("en", "zh", "hi")  # the three languages `demo run` continues


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="Hugging Face id or local checkpoint folder (default: the bundled demo model)")
    parser.add_argument("--4bit", dest="four_bit", action="store_true",
                        help="load in 4-bit NF4 (bitsandbytes, double quantisation, bf16 compute)")
    parser.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16 (default auto)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")


def _load(args: argparse.Namespace) -> Any:
    from lsn_explorer.core.model import load_model

    return load_model(args.model, dtype=args.dtype, four_bit=args.four_bit, device=args.device)


def cmd_model_info(args: argparse.Namespace) -> int:
    handle = _load(args)
    info = handle.describe()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    arch = handle.arch
    print(f"{info['source']}: {info['family']} ({info['model_type']}), {info['n_layers']} layers, "
          f"d_ff {info['d_ff']}, hidden {info['hidden_size']}, vocab {info['vocab_size']}")
    quant = f", {info['quantization']} 4-bit" if info["quantization"] else ""
    print(f"weights: {info['dtype']}{quant} on {info['device']}")
    path = f"{arch.layers}[i].{arch.mlp}"
    gate = f"{path}.{arch.gate}.output" + ("[..., :d_ff]" if arch.fused_gate_up else "")
    print(f"site g (gate pre-activation): {gate}")
    print(f"site s (activation output):   {path}.{arch.act}.output")
    if arch.gated:
        print(f"site a (down-projection in):  {path}.{arch.down}.input")
    else:
        print("site a: not separate (MLP not gated, a = s)")
    return 0


def cmd_demo_build(args: argparse.Namespace) -> int:
    from lsn_explorer.core.demo import build_demo, evaluate_demo, write_model_card
    from lsn_explorer.core.model import DEMO_MODEL_DIR, load_model

    out = Path(args.out) if args.out else DEMO_MODEL_DIR
    started = time.monotonic()

    def progress(message: str, fraction: float) -> None:
        elapsed = time.monotonic() - started
        print(f"\r[{fraction:6.1%}] {elapsed:6.0f}s  {message:<40}", end="", file=sys.stderr, flush=True)

    kwargs = {"corpus_dir": args.corpus} if args.corpus else {}
    manifest = build_demo(out, minutes=args.minutes, progress=progress, **kwargs)
    print(file=sys.stderr)
    status = "complete" if manifest["complete"] else f"stopped early at step {manifest['steps_done']}"
    print(f"demo model written to {out} ({status}, {manifest['parameters']:,} parameters, "
          f"{manifest['train_seconds']:.0f}s, final loss {manifest['final_loss_mean_last_20']:.3f})")
    if not manifest["complete"]:
        print("note: the time cap cut training short, so this model differs from the committed one")
    print("measuring held-out perplexity ...", file=sys.stderr)
    checks = evaluate_demo(load_model(out, device="cpu"), **kwargs)
    print(f"model card written to {write_model_card(out, manifest, checks)}")
    return 0


def cmd_demo_eval(args: argparse.Namespace) -> int:
    from lsn_explorer.core.demo import evaluate_demo
    from lsn_explorer.core.languages import parse_languages

    handle = _load(args)
    langs = [l.code for l in parse_languages(args.langs)] if args.langs else None
    kwargs = {"corpus_dir": args.corpus} if args.corpus else {}
    checks = evaluate_demo(handle, langs, **kwargs)
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=1))
        return 0
    print(f"{'lang':<5} {'lines':>5} {'tokens':>7} {'held-out PPL':>13} {'in-script':>10}")
    for c in checks:
        print(f"{c.lang:<5} {c.lines:>5} {c.tokens:>7} {c.perplexity:>13.1f} {c.in_script:>5}/{c.prompts}")
    return 0


def cmd_demo_run(args: argparse.Namespace) -> int:
    from lsn_explorer.core.corpora import load_parallel
    from lsn_explorer.core.demo import prompt_from
    from lsn_explorer.core.generate import continue_text
    from lsn_explorer.core.languages import get_language

    print("loading model ...", flush=True)
    handle = _load(args)
    info = handle.describe()
    print(f"{info['source']}: {info['family']}, {info['n_layers']} layers × {info['d_ff']} neurons, "
          f"{info['dtype']}{' NF4' if info['quantization'] else ''} on {info['device']}\n")
    heldout = load_parallel(DEMO_LANGS).split("heldout")
    for lang in DEMO_LANGS:
        prompt = prompt_from(heldout.lines[lang][args.line])
        continuation = continue_text(handle, prompt, max_new_tokens=args.max_new_tokens)
        print(f"[{lang}] {get_language(lang).name}")
        print(f"  prompt:       {prompt}")
        print(f"  continuation: {continuation.strip()}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsn-explorer",
        description="Find and intervene on language-specific and transfer neurons in LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"lsn-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    model = sub.add_parser("model", help="inspect a model").add_subparsers(dest="action", metavar="ACTION")
    info = model.add_parser("info", help="architecture, sizes and neuron sites of a model")
    _add_model_args(info)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_model_info)

    demo = sub.add_parser("demo", help="the bundled demo model").add_subparsers(dest="action", metavar="ACTION")
    run = demo.add_parser("run", help="load a model and continue held-out prompts in en, zh, hi")
    _add_model_args(run)
    run.add_argument("--line", type=int, default=0, help="which held-out line to prompt with")
    run.add_argument("--max-new-tokens", type=int, default=24)
    run.set_defaults(func=cmd_demo_run)
    build = demo.add_parser("build", help="rebuild the demo model from the demo corpus (seeded)")
    build.add_argument("--out", default=None, help="output folder (default: assets/demo-model)")
    build.add_argument("--minutes", type=float, default=None, help="wall-clock cap; stops training early")
    build.add_argument("--corpus", default=None, help="corpus folder with <lang>.txt files")
    build.set_defaults(func=cmd_demo_build)
    ev = demo.add_parser("eval", help="held-out perplexity and script consistency per language")
    _add_model_args(ev)
    ev.add_argument("--langs", default=None, help="comma-separated codes (default: every corpus language)")
    ev.add_argument("--corpus", default=None, help="corpus folder with <lang>.txt files")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.set_defaults(func=cmd_demo_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return func(args)
    except LsnError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
