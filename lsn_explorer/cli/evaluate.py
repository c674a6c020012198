"""`lsn-explorer eval run | show`: full evaluations over an intervention grid, in the foreground
(a progress bar; Ctrl+C stops cleanly after the current batch) or as a background job (`--detach`),
and their tables (text, JSON, CSV, LaTeX, Markdown, a PNG heat map)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import (
    JSON_HELP,
    add_intervene_arg,
    add_model_args,
    add_placement_args,
    add_session_args,
    lang_codes,
    open_session,
    placement,
    refuse_placement,
    refuse_remote_code,
)
from lsn_explorer.cli.ranks import joined_ranks, leave, main_rank, ranked_session
from lsn_explorer.errors import Cancelled, LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers

FORMATS = ("text", "json", "csv", "latex", "markdown")


def register(sub: Subparsers) -> None:
    """Add `eval` to the command parser's sub-parsers."""
    parser = sub.add_parser("eval", help="full benchmark evaluations over an intervention grid (run, show)")
    parser.add_argument("action", choices=("run", "show"))
    add_model_args(parser)
    add_placement_args(parser)
    add_session_args(parser)
    parser.add_argument("--task", help="xnli | xquad | mkqa | ppl")
    parser.add_argument("--langs", help="comma-separated language codes, e.g. en,fr,zh")
    parser.add_argument("--data-dir", default=None,
                        help="benchmark folder (default: the demo samples), or hf:DATASET (needs `pip install datasets`)")
    parser.add_argument("--split", default="test", help="test | validation (default test)")
    parser.add_argument("--limit", type=int, default=None, help="the first N samples per language (default all)")
    add_intervene_arg(parser)
    parser.add_argument("--grid", action="append", metavar="SET[:LANG]:values=V,...",
                        help="one row per value, e.g. lape:values=zero,mean,p10,p90 (language L's cells use the "
                             "set's L neurons and L's statistics; SET:LANG:values=... fixes one language)")
    parser.add_argument("--random-baseline", type=int, default=0, metavar="K",
                        help="K random neuron sets matched per layer to each grid row's set")
    parser.add_argument("--adapter", default=None, help="a fine-tuned adapter of the session to evaluate")
    parser.add_argument("--protocol", default="consistent", choices=("consistent", "faithful"),
                        help="faithful: the papers' original prompts/inputs where they differ (see README)")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per forward pass (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random baselines and bootstrap resampling (default 0)")
    parser.add_argument("--name", default=None, help="the evaluation's name (run: default TASK-N; show: default newest)")
    parser.add_argument("--detach", action="store_true", help="run as a background job: print its id and return")
    parser.add_argument("--json", action="store_true", help=JSON_HELP + " (show: the cells with scores, CIs, counts)")
    parser.add_argument("--csv", action="store_true", help="show: one CSV line per cell")
    parser.add_argument("--latex", action="store_true", help="show: a LaTeX tabular")
    parser.add_argument("--markdown", action="store_true", help="show: a Markdown table")
    parser.add_argument("--png", default=None, metavar="FILE", help="show: also write a heat map (needs matplotlib)")
    parser.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    return _run(args) if args.action == "run" else _show(args)


def _run(args: argparse.Namespace) -> int:
    from lsn_explorer.core.evals.grid import EvalSpec, build_rows
    from lsn_explorer.core.evals.runner import check_eval, prepare_model, run_eval
    from lsn_explorer.jobs.evals import refuse_if_running

    refuse_remote_code(args)  # neither the evaluation's loader nor its job passes it on yet
    if not args.task:
        raise LsnError("`eval run` needs --task", "pass --task xnli | xquad | mkqa | ppl")
    if not args.langs:
        raise LsnError("`eval run` needs --langs", "e.g. --langs en,fr")
    ranks = joined_ranks(args, "eval run", refuse={"--detach": args.detach})
    try:
        with ranked_session(args, ranks) as session:
            rows = build_rows(args.grid or [], args.intervene or [], args.random_baseline, session)
            spec = EvalSpec(task=args.task, langs=lang_codes(args.langs) or [], rows=[r.to_json() for r in rows],
                            data_dir=args.data_dir, split=args.split, limit=args.limit, protocol=args.protocol,
                            batch_size=args.batch_size, seed=args.seed, adapter=args.adapter)
            samples = check_eval(session, spec)  # data, sets, statistics, adapter: before any model loads
            if args.detach:
                return _detach(args, session, spec)
            evaluation = _stored_once(session, spec, args.name, ranks)
            refuse_if_running(session, evaluation)
            handle = prepare_model(session, evaluation, args.model, dtype=args.dtype, four_bit=args.four_bit,
                                   device=args.device, record=main_rank(ranks), **placement(args))
            cancel = threading.Event()
            previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())  # Ctrl+C: stop after this batch
            try:
                with _progress_bar(disable=args.json or not main_rank(ranks)) as progress:
                    summary = run_eval(session, handle, evaluation, progress=progress, cancel=cancel,
                                       samples=samples, ranks=ranks)
            except Cancelled:
                done = sum(len(v) for v in session.stored_samples(evaluation.id).values())
                raise LsnError(f"evaluation {evaluation.name!r} stopped; {done:,} scored samples are kept",
                               f"continue it with the same command and --name {evaluation.name}") from None
            finally:
                signal.signal(signal.SIGINT, previous)
            if main_rank(ranks):
                print(summary, file=sys.stderr)
                _print_table(session, session.eval_named(evaluation.name), args)
    except BaseException:
        leave(ranks, clean=False)
        raise
    leave(ranks)
    return 0


def _stored_once(session: Any, spec: Any, name: str | None, ranks: Any) -> Any:
    """The evaluation to run: stored (or found) by rank 0 alone; the other ranks look it up."""
    from lsn_explorer.core.evals.runner import stored_eval

    if ranks is None:
        return stored_eval(session, spec, name)
    from lsn_explorer.core.distributed import broadcast_int

    evaluation_id = broadcast_int(ranks, stored_eval(session, spec, name).id if ranks.main else 0)
    return next(e for e in session.evals() if e.id == evaluation_id)


def _detach(args: argparse.Namespace, session: Any, spec: Any) -> int:
    from lsn_explorer.jobs.evals import start_eval

    refuse_placement(args)
    evaluation, job_id = start_eval(session, spec, args.name, workdir=os.getcwd(), model=args.model,
                                    four_bit=args.four_bit, dtype=args.dtype, device=args.device)
    name = evaluation.name
    where = f"--session {args.session}" + (f" --sessions-dir {args.sessions_dir}" if args.sessions_dir else "")
    print(f"started job {job_id} for evaluation {name!r}: follow it with `lsn-explorer jobs show {job_id} {where}`; "
          f"its table: `lsn-explorer eval show --name {name} {where}`", file=sys.stderr)
    print(job_id)
    return 0


def _show(args: argparse.Namespace) -> int:
    with open_session(args, create=False) as session:
        from lsn_explorer.core.evals.runner import find_eval

        _print_table(session, find_eval(session, args.name), args)
    return 0


def _print_table(session: Any, evaluation: Any, args: argparse.Namespace) -> None:
    from lsn_explorer.core.evals.runner import eval_results
    from lsn_explorer.core.evals.summary import summarize
    from lsn_explorer.core.evals.tables import cells_json, heat_map, render

    spec, rows, samples = eval_results(session, evaluation)
    cells = summarize(spec.task, rows, samples, seed=spec.seed)
    if args.png:
        heat_map(cells, rows, args.png, title=f"{evaluation.name}: {spec.task}")
    if args.json:
        print(json.dumps({"name": evaluation.name, "task": spec.task, "langs": spec.langs,
                          "finished": evaluation.finished, "rows": [r.to_json() for r in rows],
                          "cells": cells_json(cells)}, ensure_ascii=False))
        return
    fmt = next((f for f in ("csv", "latex", "markdown") if getattr(args, f)), "text")
    if fmt == "text":
        state = "finished" if evaluation.finished else "not finished (partial results)"
        print(f"evaluation {evaluation.name}: {spec.task}, {len(samples):,} scored samples, {state}")
    print(render(cells, rows, fmt))


class _progress_bar:
    """A rich progress bar over an evaluation's samples (the `progress` callback `run_eval` takes)."""

    def __init__(self, *, disable: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                            TimeRemainingColumn(), disable=disable, transient=False)
        self.task: Any = None

    def __enter__(self) -> Any:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task(label, total=total)
        self.bar.update(self.task, completed=done, total=total, description=label)
