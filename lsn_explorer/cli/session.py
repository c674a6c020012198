"""`lsn-explorer session list | show | export | check`: the session store, read-only except for
export and `check --repair`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import JSON_HELP, SESSIONS_DIR_HELP, open_session
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers
    from lsn_explorer.session.check import CheckReport, Probes


def register(sub: Subparsers) -> None:
    """Add `session` to the command parser's sub-parsers."""
    sess = sub.add_parser("session", help="list, show, export and check sessions")
    sess.add_argument("action", choices=("list", "show", "export", "check"))
    sess.add_argument("name", nargs="?", help="session name (show, export, check)")
    sess.add_argument("--out", help="export: output folder")
    sess.add_argument("--repair", action="store_true",
                      help="check: also fix what is safe (interrupted jobs, orphaned files, leftovers) and say what")
    sess.add_argument("--json", action="store_true", help=f"check: {JSON_HELP}")
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
        raise LsnError("no session name", f"pass the session's name, e.g. `lsn-explorer session {args.action} demo`")
    if args.action == "check":
        return cmd_check(args)
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


def cmd_check(args: argparse.Namespace) -> int:
    """`session check NAME [--repair] [--json]`: exit 0 when no problem remains, else 1."""
    from lsn_explorer.session.check import check_session

    report = check_session(args.name, args.sessions_dir, probes=probes(), repair=args.repair)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=1))
    else:
        print_report(report, repaired=args.repair)
    return 0 if report.ok else 1


def probes() -> Probes:
    """The job locks and the adapter folder hash, which the session layer cannot reach itself."""
    from lsn_explorer.jobs.control import list_jobs
    from lsn_explorer.jobs.locks import lock_path, try_lock
    from lsn_explorer.session.check import Probes

    def folder_hash(folder: Path) -> str:
        from lsn_explorer.core.finetune.adapters import folder_hash as content_hash  # imports torch: only if needed

        return content_hash(folder)

    def take_job_lock(session: Any, job_id: int) -> int | None:
        return try_lock(lock_path(session.folder, job_id))

    return Probes(job_states=list_jobs, take_job_lock=take_job_lock, folder_hash=folder_hash)


def print_report(report: CheckReport, *, repaired: bool) -> None:
    checked = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report.checked.items())
    print(f"session {report.session}: checked {checked or 'the database'}")
    for finding in report.findings:
        label = "problem" if finding.problem else "note"
        print(f"{label}: [{finding.area}] {finding.message}")
        if finding.repaired:
            print(f"  repaired: {finding.repaired}")
        elif finding.repair and not repaired:
            print(f"  --repair would: {finding.repair}")
        if finding.hint and not finding.repaired:
            print(f"  hint: {finding.hint}")
    fixed = sum(1 for f in report.findings if f.repaired)
    left = len(report.remaining)
    fixable = sum(1 for f in report.remaining if f.repair)
    if not left:
        print("ok: no problems" + (f" remain ({fixed} repaired)" if fixed else ""))
    else:
        more = f"; {fixable} of them can be fixed safely with --repair" if fixable and not repaired else ""
        print(f"{left} problem(s) remain" + (f" ({fixed} repaired)" if fixed else "") + more)
