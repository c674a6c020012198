"""`lsn-explorer ppl`: held-out perplexity with and without interventions, and the PPXC matrix
(SCIENCE.md §5). The numbers and the records come from `core.tasks.perplexity`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from lsn_explorer.cli.common import (
    JSON_HELP,
    add_adapter_arg,
    add_intervene_arg,
    add_model_args,
    add_placement_args,
    add_remote_args,
    add_session_args,
    check_sources,
    check_syntax,
    lang_codes,
    open_session,
    plans,
    refuse_remote,
    session_model,
)
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers
    from lsn_explorer.core.interventions.spec import Intervention
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.core.tasks.perplexity import PpxcMatrix
    from lsn_explorer.session.store import Session


def register(sub: Subparsers) -> None:
    """Add `ppl` to the command parser's sub-parsers."""
    ppl = sub.add_parser("ppl", help="held-out perplexity with and without interventions; PPXC matrix")
    add_model_args(ppl)
    add_placement_args(ppl)
    add_remote_args(ppl)
    add_session_args(ppl)
    ppl.add_argument("--langs", help="comma-separated language codes")
    add_intervene_arg(ppl)
    add_adapter_arg(ppl)
    ppl.add_argument("--matrix", action="store_true", help="PPXC(i, j): deactivate i's neurons, measure j")
    ppl.add_argument("--set", default="lape", help="matrix: the stored neuron set (default lape)")
    ppl.add_argument("--value", default="zero", help="matrix: value written (default zero)")
    ppl.add_argument("--corpus", default=None,
                     help="folder with <lang>.txt files (default: demo corpus), or hf:openlanguagedata/flores_plus")
    ppl.add_argument("--json", action="store_true", help=JSON_HELP)
    ppl.set_defaults(func=cmd_ppl)


def cmd_ppl(args: argparse.Namespace) -> int:
    from lsn_explorer.core.interventions.resolve import check_sources as check_set
    from lsn_explorer.core.interventions.spec import parse_intervention
    from lsn_explorer.core.tasks.perplexity import load_lines, ppl_rows, record_ppl

    refuse_remote(args, session_decides=True)
    langs = lang_codes(args.langs)
    if not langs:
        raise LsnError("no languages given", "pass --langs, e.g. --langs zh,hi,en")
    lines = {lang: load_lines(lang, args.corpus) for lang in langs}  # readable before loading
    if args.matrix:
        template = parse_intervention(f"{args.set}:{langs[0]}={args.value}")
    else:
        check_syntax(args.intervene)
    with open_session(args) as session:
        if args.matrix:  # the set must exist before minutes of perplexity work start
            check_set([parse_intervention(f"{args.set}=zero")], session)
        check_sources(args, session)
        handle = session_model(args, session)
        if args.matrix:
            return _matrix(args, handle, session, langs, template)
        _, plan = plans(args, handle, session)
        rows = ppl_rows(handle, lines, plan)
        record = record_ppl(session, handle, rows, args.intervene or [])
    if args.json:
        print(json.dumps({"rows": rows, "record": record}))
        return 0
    print(f"{'lang':<5} {'tokens':>7} {'PPL':>9}" + (f" {'intervened':>11} {'change':>9} {'rel':>7}" if plan else ""))
    for r in rows:
        extra = f" {r['intervened']:>11.2f} {r['change']:>+9.2f} {r['relative']:>+7.1%}" if plan else ""
        print(f"{r['lang']:<5} {r['tokens']:>7} {r['ppl']:>9.2f}{extra}")
    return 0


def _matrix(args: argparse.Namespace, handle: ModelHandle, session: Session, langs: list[str],
            template: Intervention) -> int:
    from lsn_explorer.core.tasks.perplexity import ppxc, ppxc_payload, record_ppxc

    started = time.monotonic()

    def progress(label: str, done: int, total: int) -> None:  # core.progress.Progress; the label is "row i"
        elapsed = time.monotonic() - started
        eta = elapsed / done * (total - done) if done else 0.0
        end = "\n" if done >= total or not sys.stderr.isatty() else ""
        print(f"\rPPXC: {done}/{total} cells, {elapsed:.0f}s, about {eta:.0f}s left   ", end=end,
              file=sys.stderr, flush=True)

    matrix = ppxc(handle, session, langs, template, args.corpus, progress=progress)
    record = record_ppxc(session, handle, matrix, args.set, args.value)
    if args.json:
        print(json.dumps(ppxc_payload(matrix, args.set, args.value) | {"record": record}))
        return 0
    _print_ppxc(matrix, args.set, args.value)
    return 0


def _print_ppxc(matrix: PpxcMatrix, set_name: str, value: str) -> None:
    """A rich table on a terminal; tab-separated values, complete, when piped or redirected
    (rich would cut cells to an 80-column console there)."""
    from rich.console import Console
    from rich.table import Table

    cell = {(i, j): f"{matrix.delta(i, j):+.1f} ({matrix.relative(i, j):+.1%})" for i in matrix.rows for j in matrix.cols}
    if not sys.stdout.isatty():
        print(f"# PPXC: rows = {set_name} neurons of i set to {value}; columns = PPL of j; "
              "cells = change (relative change); ✓ = diagonal is the row's largest relative change")
        print("\t".join(["i \\ j", *matrix.cols]))
        for i in matrix.rows:
            print("\t".join([i + (" ✓" if matrix.diagonal_dominant(i) else ""), *(cell[i, j] for j in matrix.cols)]))
        print("\t".join(["base PPL", *(f"{matrix.base[j]:.1f}" for j in matrix.cols)]))
    else:
        table = Table(title=f"PPXC: rows = {set_name} neurons of i set to {value}, columns = PPL of j "
                            "(change, relative change; diagonal in bold)")
        table.add_column("i \\ j", no_wrap=True)
        for j in matrix.cols:
            table.add_column(j, justify="right", no_wrap=True)
        for i in matrix.rows:
            cells = [f"[bold reverse]{cell[i, j]}[/]" if i == j else cell[i, j] for j in matrix.cols]
            table.add_row(i + (" ✓" if matrix.diagonal_dominant(i) else ""), *cells)
        table.add_row("base PPL", *(f"{matrix.base[j]:.1f}" for j in matrix.cols), style="dim")
        Console().print(table)
        print("✓ = the diagonal entry is the row's largest relative change")
    for i, why in matrix.skipped.items():
        print(f"row {i} skipped: {why}")
