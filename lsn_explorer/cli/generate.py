"""`lsn-explorer generate`: continue a prompt, optionally side by side with interventions."""

from __future__ import annotations

import argparse
import json
import sys
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
    open_session,
    plans,
    refuse_remote,
    session_model,
)
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers
    from lsn_explorer.core.generate import Generation, TokenEvent


def register(sub: Subparsers) -> None:
    """Add `generate` to the command parser's sub-parsers."""
    gen = sub.add_parser("generate", help="continue a prompt, optionally side by side with interventions")
    add_model_args(gen)
    add_placement_args(gen)
    add_remote_args(gen)
    add_session_args(gen, default=None)
    gen.add_argument("--prompt", required=True, help="text to continue")
    add_intervene_arg(gen)
    add_adapter_arg(gen)
    gen.add_argument("--compare", action="store_true", help="baseline and intervened from one batched run")
    gen.add_argument("--max-new-tokens", type=int, default=32)
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed, shared by both rows")
    gen.add_argument("--json", action="store_true", help=JSON_HELP)
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from lsn_explorer.core.generate import generate, record_generation

    refuse_remote(args, session_decides=True)
    check_syntax(args.intervene)
    if args.compare and not args.intervene:
        raise LsnError("--compare needs an intervention to compare against", "add --intervene SPEC")
    session = open_session(args) if args.session else None  # generation history goes there
    try:
        check_sources(args, session)
        handle = session_model(args, session)
        _, plan = plans(args, handle, session)
        rows = [None, plan] if args.compare else [plan]
        labels = ["baseline", "intervened"] if args.compare else None
        # A remote generation hands back its tokens when it ends (nothing streams from NDIF), so the
        # text is printed then, as for a pipe.
        streaming = not args.json and not args.compare and sys.stdout.isatty() and handle.remote is None

        def on_token(event: TokenEvent) -> None:
            if streaming:
                print(event.text, end="", flush=True)

        if streaming:
            print(args.prompt, end="", flush=True)
        result = generate(handle, args.prompt, rows, labels=labels, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, seed=args.seed, on_token=on_token)
        if session is not None:
            record_generation(session, handle, result)
    finally:
        if session is not None:
            session.close()
    _print_generation(args, result, streaming)
    return 0


def _print_generation(args: argparse.Namespace, result: Generation, streamed: bool) -> None:
    if args.json:
        print(json.dumps({"prompt": result.prompt, "record": result.record,
                          "rows": [row.__dict__ for row in result.rows]}, ensure_ascii=False))
        return
    if streamed:
        print()
    else:
        for row in result.rows:
            mix = ", ".join(f"{k} {v:.0%}" for k, v in row.scripts.items()) or "no letters"
            title = row.label if not row.specs else f"{row.label}: {' '.join(row.specs)}"
            print(f"[{title}]  (ppl {row.perplexity:.1f}; {mix})")
            print(f"{result.prompt}{row.text}\n")
    if result.record is not None:
        print(f"recorded in session {args.session!r} (record {result.record})", file=sys.stderr)
