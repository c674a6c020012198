"""`lsn-explorer jobs list | show | cancel | resume | wait | log [ID]`: a session's background jobs."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import JSON_HELP, add_session_args, open_session
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers

ACTIONS = ("list", "show", "cancel", "resume", "wait", "log")


def register(sub: Subparsers) -> None:
    """Add `jobs` to the command parser's sub-parsers."""
    jobs = sub.add_parser("jobs", help="background jobs of a session: list, show, cancel, resume, wait, log")
    jobs.add_argument("action", choices=ACTIONS)
    jobs.add_argument("id", nargs="?", type=int, help="job id (all actions but list)")
    add_session_args(jobs)
    jobs.add_argument("--timeout", type=float, default=None, help="wait: give up after this many seconds")
    jobs.add_argument("--lines", type=int, default=40, help="log: how many of the last lines (default 40)")
    jobs.add_argument("--path", action="store_true", help="log: print the log file's path only")
    jobs.add_argument("--json", action="store_true", help=JSON_HELP)
    jobs.set_defaults(func=cmd_jobs)


def cmd_jobs(args: argparse.Namespace) -> int:
    from lsn_explorer.jobs import control
    from lsn_explorer.jobs.progress import progress_line

    with open_session(args, create=False) as session:
        if args.action == "list":
            jobs = control.list_jobs(session)
            if args.json:
                print(json.dumps([control.describe(session, job) for job in jobs], ensure_ascii=False))
                return 0
            if not jobs:
                print(f"session {session.name!r} has no jobs")
            for job in jobs:
                print(f"{job.id:>4}  {job.state:<11} {job.name:<24} {progress_line(job)}")
            return 0
        if args.id is None:
            raise LsnError(f"`jobs {args.action}` needs a job id",
                           f"see the ids with `lsn-explorer jobs list --session {session.name}`")
        where = f"--session {session.name}"
        if args.action == "show":
            show(control.describe(session, control.status(session, args.id)), as_json=args.json)
        elif args.action == "cancel":
            job = control.cancel(session, args.id)
            print(f"job {job.id}: asked to stop (pid {job.pid}); it stops after the current batch, "
                  f"keeping what is finished (`lsn-explorer jobs wait {job.id} {where}`)")
        elif args.action == "resume":
            pid = control.resume(session, args.id)
            print(f"job {args.id}: resumed (pid {pid}); finished units are kept, not recomputed "
                  f"(`lsn-explorer jobs wait {args.id} {where}`)")
        elif args.action == "wait":
            job = control.wait(session, args.id, timeout=args.timeout)
            show(control.describe(session, job), as_json=args.json)
            return 0 if job.state == "finished" else 1
        else:
            if args.path:
                print(control.describe(session, control.status(session, args.id))["log"])
            else:
                print("\n".join(control.tail(session, args.id, args.lines)))
    return 0


def show(data: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    print(f"job {data['id']}: {data['name']} ({data['kind']})")
    print(f"state     {data['state']}" + (f" (pid {data['pid']})" if data["pid"] else ""))
    for key in ("created", "started", "ended"):
        if data[key]:
            print(f"{key:<9} {data[key]}")
    progress = data["progress"]
    if progress.get("total"):
        print(f"progress  {progress.get('label', '')} {progress['done']:,}/{progress['total']:,} "
              f"{progress.get('unit', '')}; {progress.get('units_done', 0)}/{progress.get('units_total', 0)} units")
    if progress.get("message"):
        print(f"message   {progress['message']}")
    if data["error"]:
        print(f"error     {data['error']}")
    print(f"log       {data['log']}")
