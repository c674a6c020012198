"""`lsn-explorer stats [run | merge]`: activation statistics per language into a session, in the
foreground (a progress bar) or, with `--detach`, as a background job."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import (
    add_model_args,
    add_placement_args,
    add_remote_args,
    add_session_args,
    lang_codes,
    load,
    open_session,
    refuse_placement,
    refuse_remote,
    refuse_remote_code,
)
from lsn_explorer.cli.ranks import joined_ranks, leave, main_rank, ranked_session
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers

# Tokens per language when `stats` runs on the demo model without --tokens: enough for stable
# LAPE sets on the demo corpus (the science tests use 4,000), and the README workflow stays
# within minutes on 2 CPU cores. Real models use the whole corpus unless --tokens says otherwise.
DEMO_TOKENS = 20_000


def register(sub: Subparsers) -> None:
    """Add `stats` to the command parser's sub-parsers."""
    stats = sub.add_parser("stats", help="activation statistics per language into a session")
    stats.add_argument("action", nargs="?", choices=("run", "merge"), default="run",
                       help="run (default) or merge shard results")
    add_model_args(stats)
    add_placement_args(stats)
    add_remote_args(stats)
    add_session_args(stats)
    stats.add_argument("--langs", help="comma-separated language codes, e.g. en,zh,hi")
    stats.add_argument("--corpus", nargs="+",
                       help="a folder of <lang>.txt / FLORES / Tatoeba files, files (lang=FILE), or hf:wikipedia")
    stats.add_argument("--site", default="s", choices=("g", "s", "a"), help="which activation (default s)")
    stats.add_argument("--mode", default="consistent", choices=("consistent", "faithful"))
    stats.add_argument("--window", type=int, default=None, help="tokens per window (default min(512, context))")
    stats.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    stats.add_argument("--tokens", type=token_cap, default=None,
                       help=f"cap on tokens per language, or `all` (default: all; {DEMO_TOKENS:,} on the demo model)")
    stats.add_argument("--bins", type=int, default=1024,
                       help="histogram bins per neuron (percentile resolution; 256 or more)")
    stats.add_argument("--shard", default=None, help="i/n: take every n-th batch starting at i")
    stats.add_argument("--allow-mixed", action="store_true",
                       help="store statistics of another model/precision beside those already in the session")
    stats.add_argument("--detach", action="store_true",
                       help="run as a background job: print its id and return at once (see `lsn-explorer jobs`)")
    stats.add_argument("--json", action="store_true", help="print a JSON summary")
    stats.set_defaults(func=cmd_stats)


def token_cap(text: str) -> int | str:
    """`--tokens N` or `--tokens all`; range checks happen in StatsSettings (one message)."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or `all`") from None


def shard(text: str | None) -> tuple[int, int] | None:
    """`--shard i/n` as (i, n)."""
    if text is None:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise LsnError(f"bad --shard {text!r}", "write i/n with 0 ≤ i < n, e.g. --shard 0/4")
    return index, count


def cmd_stats(args: argparse.Namespace) -> int:
    from lsn_explorer.core.data.corpora import read_lines, resolve_corpora
    from lsn_explorer.core.stats.runs import StatsSettings, compute_stats

    if args.action == "merge" and args.remote:
        raise LsnError("`stats merge` loads no model, so there is nothing to run remotely", "leave out --remote")
    refuse_remote(args)
    if args.action == "merge":
        if args.detach:
            raise LsnError("`stats merge` does not run as a job", "it takes seconds: run it without --detach")
        return _merge(args)
    if not args.langs:
        raise LsnError("no languages given", "pass --langs, e.g. --langs en,zh,hi")
    langs = lang_codes(args.langs) or []
    corpora = resolve_corpora(langs, args.corpus, args.sessions_dir)
    for path in corpora.values():
        read_lines(path)  # every file readable and non-empty before anything is computed or written
    shard_spec = shard(args.shard)
    max_tokens = None if args.tokens == "all" else args.tokens
    if args.tokens is None and args.model is None:
        max_tokens = DEMO_TOKENS
        print(f"note: demo model: statistics over the first {DEMO_TOKENS:,} tokens per language "
              "(--tokens N or --tokens all to change)", file=sys.stderr)
    settings = StatsSettings(site=args.site, mode=args.mode, window=args.window, batch_size=args.batch_size,
                             max_tokens=max_tokens, bins=args.bins)  # checked here, before the model loads
    if args.detach:
        return _detach(args, langs, max_tokens, shard_spec)
    ranks = joined_ranks(args, "stats", refuse={"--shard": shard_spec is not None})
    handle = load(args)
    settings = settings.resolved(handle)
    try:
        with ranked_session(args, ranks) as session, _progress_bar(disable=args.json or not main_rank(ranks)) as progress:
            summaries = compute_stats(session, handle, corpora, settings, shard=shard_spec, progress=progress,
                                      warn=lambda m: print(f"warning: {m}", file=sys.stderr),
                                      allow_mixed=args.allow_mixed, ranks=ranks)
    except BaseException:
        leave(ranks, clean=False)
        raise
    leave(ranks)
    if not main_rank(ranks):
        return 0
    if args.json:
        print(json.dumps(summaries))
    else:
        for row in summaries:
            state = "already in the session" if row["skipped"] else "collected"
            print(f"{row['lang']}: {row['tokens']:,} tokens {state} (record {row['record']})")
    return 0


def _detach(args: argparse.Namespace, langs: list[str], max_tokens: int | None,
            shard_spec: tuple[int, int] | None) -> int:
    """Start the statistics as a background job; the job id alone is the last line printed."""
    import os

    from lsn_explorer.core.model.loading import check_source
    from lsn_explorer.jobs.control import launch
    from lsn_explorer.jobs.spec import StatsJob

    refuse_placement(args)
    refuse_remote_code(args)  # a job does not pass it on yet
    if shard_spec is not None:
        raise LsnError("--shard and --detach do not go together",
                       "a job covers whole corpora; run each --shard i/n as its own process, then `stats merge`")
    check_source(args.model)
    spec = StatsJob(langs=langs, workdir=os.getcwd(), corpus=args.corpus, model=args.model, four_bit=args.four_bit,
                    dtype=args.dtype, device=args.device, site=args.site, mode=args.mode, window=args.window,
                    batch_size=args.batch_size, max_tokens=max_tokens, bins=args.bins, allow_mixed=args.allow_mixed)
    with open_session(args) as session:
        job_id = launch(session, spec)
    where = f"--session {args.session}" + (f" --sessions-dir {args.sessions_dir}" if args.sessions_dir else "")
    print(f"started job {job_id}: follow it with `lsn-explorer jobs show {job_id} {where}`; "
          f"its log: `lsn-explorer jobs log {job_id} {where}`", file=sys.stderr)
    print(job_id)
    return 0


def _merge(args: argparse.Namespace) -> int:
    from lsn_explorer.core.stats.runs import merge_shards

    with open_session(args, create=False) as session:
        merged = merge_shards(session, lang_codes(args.langs))
    for row in merged:
        print(f"{row['lang']}: merged {row['tokens']:,} tokens (record {row['record']})")
    return 0


@contextmanager
def _progress_bar(*, disable: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar per language; gives the `progress(lang, done, total)` callback that
    `compute_stats` reports to."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description:>4}"), BarColumn(), TextColumn("{task.completed:>9,.0f} tok"),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, disable=disable, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(lang: str, done: int, total: int) -> None:
            if lang not in tasks:
                tasks[lang] = bar.add_task(lang, total=total, rate="")
            task = tasks[lang]
            speed = bar.tasks[task].speed
            bar.update(task, completed=done, total=total, rate=f"{speed:,.0f} tok/s" if speed else "")

        yield progress
