"""`lsn-explorer demo run | build | eval`: the bundled demo model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from lsn_explorer.cli.common import JSON_HELP, add_model_args, lang_codes, load

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers

DEMO_LANGS = ("en", "zh", "hi")  # the three languages `demo run` continues
CORPUS_HELP = "corpus folder with <lang>.txt files"


def register(sub: Subparsers) -> None:
    """Add `demo` and its actions to the command parser's sub-parsers."""
    demo = sub.add_parser("demo", help="the bundled demo model").add_subparsers(dest="action", metavar="ACTION")
    run = demo.add_parser("run", help="load a model and continue held-out prompts in en, zh, hi")
    add_model_args(run)
    run.add_argument("--line", type=int, default=0, help="which held-out line to prompt with")
    run.add_argument("--max-new-tokens", type=int, default=24)
    run.set_defaults(func=cmd_demo_run)
    build = demo.add_parser("build", help="rebuild the demo model from the demo corpus (seeded)")
    build.add_argument("--out", default=None, help="output folder (default: assets/demo-model)")
    build.add_argument("--minutes", type=float, default=None, help="wall-clock cap; stops training early")
    build.add_argument("--corpus", default=None, help=CORPUS_HELP)
    build.set_defaults(func=cmd_demo_build)
    ev = demo.add_parser("eval", help="held-out perplexity and script consistency per language")
    add_model_args(ev)
    ev.add_argument("--langs", default=None, help="comma-separated codes (default: every corpus language)")
    ev.add_argument("--corpus", default=None, help=CORPUS_HELP)
    ev.add_argument("--json", action="store_true", help=JSON_HELP)
    ev.set_defaults(func=cmd_demo_eval)


def cmd_demo_build(args: argparse.Namespace) -> int:
    from lsn_explorer.core.model.loading import DEMO_MODEL_DIR, load_model
    from lsn_explorer.demo.build import build_demo, evaluate_demo, write_model_card
    from lsn_explorer.paths import output_dir

    out = output_dir(args.out) if args.out else DEMO_MODEL_DIR
    started = time.monotonic()

    def progress(message: str, done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        print(f"\r[{done / max(total, 1):6.1%}] {elapsed:6.0f}s  {message:<40}", end="", file=sys.stderr, flush=True)

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
    from lsn_explorer.demo.build import evaluate_demo

    handle = load(args)
    langs = lang_codes(args.langs)
    kwargs = {"corpus_dir": args.corpus} if args.corpus else {}
    checks = evaluate_demo(handle, langs, **kwargs)
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=1))
        return 0
    print(f"{'lang':<5} {'lines':>5} {'tokens':>7} {'held-out PPL':>13} {'bits/char':>10} {'unigram':>8} {'in-script':>10}")
    for c in checks:
        print(f"{c.lang:<5} {c.lines:>5} {c.tokens:>7} {c.perplexity:>13.1f} {c.bits_per_char:>10.2f} "
              f"{c.unigram_bits_per_char:>8.2f} {c.in_script:>5}/{c.prompts}")
    return 0


def cmd_demo_run(args: argparse.Namespace) -> int:
    from lsn_explorer.core.data.corpora import load_parallel
    from lsn_explorer.core.data.languages import get_language
    from lsn_explorer.core.generate import continue_text
    from lsn_explorer.demo.build import prompt_from

    print("loading model ...", flush=True)
    handle = load(args)
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
