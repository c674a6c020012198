"""`lsn-explorer session list | show | export`: the session store, read-only except for export."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from lsn_explorer.cli.common import SESSIONS_DIR_HELP, open_session
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    """Add `session` to the command parser's sub-parsers."""
    sess = sub.add_parser("session", help="list, show and export sessions")
    sess.add_argument("action", choices=("list", "show", "export"))
    sess.add_argument("name", nargs="?", help="session name (show, export)")
    sess.add_argument("--out", help="export: output folder")
    sess.add_argument("--sessions-dir", default=None, help=SESSIONS_DIR_HELP)
    sess.set_defaults(func=cmd_session)


def cmd_session(args: argparse.Namespace) -> int:
    from lsn_explorer.paths import output_dir
    from lsn_explorer.session.export import export_session
    from lsn_explorer.session.store import list_sessions

    if args.action == "list":
        rows = list_sessions(args.sessions_dir)
        if not rows:
            print("no sessions yet")
        for row in rows:
            detail = row.get("error") or ", ".join(f"{n} {k}" for k, n in row["records"].items()) or "empty"
            print(f"{row['name']:<20} {detail}  {row.get('last_change', '')}")
        return 0
    if not args.name:
        raise LsnError("no session name", "pass the session's name, e.g. `lsn-explorer session show demo`")
    args.session = args.name
    with open_session(args, create=False) as session:
        if args.action == "export":
            if not args.out:
                raise LsnError("no output folder", "pass --out DIR")
            written = export_session(session, output_dir(args.out))
            print(f"exported {len(written)} files to {args.out}")
            return 0
        for record in session.records():
            summary = {k: v for k, v in record.payload.items() if k not in ("set", "key")}
            print(f"#{record.id:<4} {record.created}  {record.kind:<12} {record.name:<10} {json.dumps(summary)[:90]}")
    return 0
