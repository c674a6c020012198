"""`lsn-explorer finetune [run | export | list]`: neuron-masked (Q)LoRA fine-tuning into a session
adapter, in the foreground (a progress bar; Ctrl+C stops after the current step, keeping a
checkpoint) or as a background job (`--detach`); exporting an adapter as a plain peft folder."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import JSON_HELP, add_model_args, add_session_args, open_session, refuse_remote_code
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers
    from lsn_explorer.core.finetune.config import FinetuneSpec

# flag → FinetuneSpec field; every one defaults to None so a --recipe's value shows through
SPEC_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--task": ("task", str, "lm (a corpus) | xnli | xquad (default lm)"),
    "--train-lang": ("train_lang", str, "language of the training data"),
    "--train-data": ("train_data", str, "lm: corpus folder or text file (default: the demo corpus); "
                                        "xnli/xquad: benchmark folder, file or hf:DATASET (default: demo samples)"),
    "--neurons": ("neurons", str, "SET:LANG | SET:L1+L2 | random:SET:LANG | none (attention only); "
                                  "Mondal's setups: source SET:en, target SET:T, both SET:en+T, random random:SET:T"),
    "--modules": ("modules", str, "masked MLP projections, comma-separated (default gate,up,down)"),
    "--attention": ("attention", str, "unmasked LoRA on attention: q,k,v,o or none (default none)"),
    "--rank": ("rank", int, "LoRA rank r (default 8)"),
    "--alpha": ("alpha", float, "LoRA alpha (default 16)"),
    "--lr": ("lr", float, "AdamW learning rate (default 3e-3, for the demo model)"),
    "--epochs": ("epochs", int, "passes over the data (default 1)"),
    "--batch": ("batch", int, "sequences per micro-batch (default 8)"),
    "--grad-accum": ("grad_accum", int, "micro-batches per optimizer step (default 1)"),
    "--max-len": ("max_len", int, "tokens per sequence, at most the model's context (default 128)"),
    "--train-frac": ("train_frac", float, "fraction of the training examples, a seeded draw (default 1)"),
    "--max-steps": ("max_steps", int, "stop after N optimizer steps (default: all epochs)"),
    "--seed": ("seed", int, "data order, --train-frac draw, random neurons (default 0)"),
    "--weight-decay": ("weight_decay", float, "AdamW weight decay (default 0.1)"),
    "--warmup": ("warmup", float, "warm-up fraction of the steps, then linear decay (default 0.01)"),
    "--clip": ("clip", float, "gradient-norm clipping (default 1.0)"),
    "--checkpoint-every": ("checkpoint_every", int, "optimizer steps between checkpoints (default 20)"),
}


def register(sub: Subparsers) -> None:
    """Add `finetune` to the command parser's sub-parsers."""
    from lsn_explorer.core.finetune.config import RECIPES

    parser = sub.add_parser("finetune", help="neuron-masked (Q)LoRA fine-tuning into a session adapter (run, export, list)")
    parser.add_argument("action", nargs="?", choices=("run", "export", "list"), default="run",
                        help="run (default), export an adapter, or list the session's adapters")
    add_model_args(parser)
    parser.add_argument("--no-4bit", dest="four_bit", action="store_false",
                        help="full-precision base even when the --recipe says NF4")
    parser.set_defaults(four_bit=None)  # absent: the recipe decides (else full precision)
    add_session_args(parser)
    for flag, (dest, kind, text) in SPEC_FLAGS.items():
        parser.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    parser.add_argument("--recipe", choices=tuple(RECIPES),
                        help="fill the hyper-parameters of Mondal et al.'s original code (explicit flags still win)")
    parser.add_argument("--name", default=None, help="adapter name (run: default TASK-LANG-NEURONS; export: which)")
    parser.add_argument("--out", default=None, help="export: the folder to write (new or empty)")
    parser.add_argument("--detach", action="store_true", help="run as a background job: print its id and return")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    parser.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    if args.action == "export":
        return _export(args)
    return _run(args)


def spec_from_args(args: argparse.Namespace) -> FinetuneSpec:
    """The fine-tune the flags describe (a recipe's values, overridden by explicit flags)."""
    from lsn_explorer.core.finetune.config import from_recipe

    given = {dest: getattr(args, dest) for dest, _, _ in SPEC_FLAGS.values()}
    return from_recipe(args.recipe, **given, four_bit=args.four_bit, name=args.name)


def _run(args: argparse.Namespace) -> int:
    refuse_remote_code(args)  # the fine-tune's loader and its job do not pass it on yet
    from lsn_explorer.jobs.finetunes import check_finetune, pin_finetune

    spec = spec_from_args(args)  # settings checked before anything is read or loaded
    source = check_finetune(spec, args.model)
    if spec.train_data is None and spec.task != "lm":
        print(f"note: training on {source}, which are also the evaluation samples (--train-data for real data)",
              file=sys.stderr)
    with open_session(args) as session:
        if args.detach:
            return _detach(args, session, spec)
        return _foreground(args, session, pin_finetune(session, spec))


def _foreground(args: argparse.Namespace, session: Any, spec: FinetuneSpec) -> int:
    from lsn_explorer.core.finetune.train import finetune, load_base

    handle = load_base(session, args.model, spec, dtype=args.dtype, device=args.device)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())  # Ctrl+C: stop after this step
    try:
        with _ProgressBar(disable=args.json) as bar:
            result = finetune(session, handle, spec, progress=bar, cancel=cancel, report=bar.report,
                              warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print(json.dumps({"name": result.name, "record": result.record, "folder": result.folder, "steps": result.steps,
                          "final_loss": result.final_loss, "tokens": result.tokens, "seconds": round(result.seconds, 1),
                          "resumed_from": result.resumed_from, "skipped": result.skipped}))
    elif result.skipped:
        print(f"adapter {result.name!r} with these settings is already in the session (record {result.record})")
    else:
        resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
        print(f"adapter {result.name!r}: {result.steps} steps{resumed}, final loss {result.final_loss:.4f}, "
              f"{result.tokens:,} tokens in {result.seconds:.0f} s (record {result.record}, {result.folder})")
    return 0


def _detach(args: argparse.Namespace, session: Any, spec: FinetuneSpec) -> int:
    """Start the fine-tune as a background job; the job id alone is the last line printed."""
    from lsn_explorer.jobs.finetunes import start_finetune

    _, job_id = start_finetune(session, spec, workdir=os.getcwd(), model=args.model, dtype=args.dtype,
                               device=args.device)
    where = f"--session {args.session}" + (f" --sessions-dir {args.sessions_dir}" if args.sessions_dir else "")
    print(f"started job {job_id}: follow it with `lsn-explorer jobs show {job_id} {where}`; "
          f"its log: `lsn-explorer jobs log {job_id} {where}`", file=sys.stderr)
    print(job_id)
    return 0


def _list(args: argparse.Namespace) -> int:
    from lsn_explorer.core.model.adapters import list_adapters

    with open_session(args, create=False) as session:
        rows = list_adapters(session)
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"session {args.session!r} has no adapters; train one with `lsn-explorer finetune --session {args.session} ...`")
        return 0
    print(f"{'name':<28} {'task':<5} {'lang':<4} {'neurons':<18} {'modules':<20} {'steps':>6} {'loss':>8}")
    for row in rows:
        modules = ",".join(row["modules"] or []) + ("+" + ",".join(row["attention"]) if row["attention"] else "")
        loss = f"{row['final_loss']:.4f}" if row["final_loss"] is not None else "-"
        missing = "" if row["present"] else "  (folder missing)"
        print(f"{row['name']:<28} {row['task'] or '':<5} {row['lang'] or '':<4} {row['neurons'] or '':<18} "
              f"{modules:<20} {row['steps'] or 0:>6} {loss:>8}{missing}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from lsn_explorer.core.finetune.adapters import export

    if not args.name or not args.out:
        raise LsnError("`finetune export` needs --name and --out", "e.g. --name lm-zh-lape-zh --out ./my-adapter")
    with open_session(args, create=False) as session:
        out = export(session, args.name, args.out)
    print(f"exported adapter {args.name!r} to {out}: load it with peft's PeftModel.from_pretrained(base_model, {str(out)!r})")
    return 0


class _ProgressBar:
    """A rich progress bar over optimizer steps with the loss and tokens/s (the `progress` and
    `report` callbacks `finetune` takes)."""

    def __init__(self, *, disable: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"), TextColumn("{task.fields[stats]}"),
                            TimeRemainingColumn(), disable=disable, transient=False)
        self.task: Any = None
        self.stats = ""

    def __enter__(self) -> _ProgressBar:
        return self  # the bar starts with the first step: a run refused before it prints nothing

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.bar.stop()

    def report(self, step: Any) -> None:
        self.stats = f"loss {step.loss:.4f} · {step.tokens_per_s:,.0f} tok/s"

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, stats="")
        self.bar.update(self.task, completed=done, total=total, description=label, stats=self.stats)
