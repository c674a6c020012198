"""`lsn-explorer tui` (and `lsn-explorer` alone): open the terminal workbench.

Textual is imported only when the command runs, so the rest of the CLI never loads it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from lsn_explorer.cli.common import SESSIONS_DIR_HELP

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers

LANE_GRACE_S = 1.0  # how long a quit waits for a cancelled model task to finish what it writes


def register(sub: Subparsers) -> None:
    """Add `tui` to the command parser's sub-parsers."""
    tui = sub.add_parser("tui", help="open the terminal workbench (also: lsn-explorer with no arguments)")
    tui.add_argument("--model", default=None, help="Hugging Face id or local checkpoint folder (default: demo)")
    tui.add_argument("--4bit", dest="four_bit", action="store_true", help="load in 4-bit NF4 (bitsandbytes)")
    tui.add_argument("--session", default=None, help="open this session (default: pick one at start)")
    tui.add_argument("--sessions-dir", default=None, help=SESSIONS_DIR_HELP)
    tui.add_argument("--corpus", default=None, help="folder with <lang>.txt files (default: the demo corpus)")
    tui.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    from lsn_explorer.session.store import session_folder
    from lsn_explorer.tui.app import create_app
    from lsn_explorer.tui.lane import wait_for_lane

    if args.session is not None:
        session_folder(args.session, args.sessions_dir)  # a bad name or store fails here, not inside the app
    create_app(model=args.model, four_bit=args.four_bit, session=args.session, root=args.sessions_dir,
               corpus_dir=args.corpus).run()
    if not wait_for_lane(LANE_GRACE_S):
        # The user quit while a model task ran that does not stop when asked (a model load): end
        # now rather than leave their shell waiting for it (tui/lane.py).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
