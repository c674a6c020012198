"""The `lsn-explorer` command line: argument parsing and printing, no science.

One module per command group (`model`, `demo`, `stats`, `identify`, `generate`, `ppl`, `score`,
`eval`, `finetune`, `analyze`, `session`, `jobs`, `tui`); each registers its sub-parser and calls
`core` functions, which compute and write the session's records. `common` holds the flags and
helpers several commands share. Heavy libraries (torch, transformers, nnsight, textual) are
imported inside the commands so `--help` is instant. An `LsnError` becomes `error: ...` /
`hint: ...` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from lsn_explorer import __version__
from lsn_explorer.cli import analyze, demo, evaluate, finetune, generate, identify, jobs, model, ppl, score, session, stats, tui
from lsn_explorer.cli.common import print_error
from lsn_explorer.errors import LsnError

# The order of `lsn-explorer --help`: the workflow from a model to its neurons to interventions.
COMMANDS = (model, demo, stats, identify, generate, ppl, score, evaluate, finetune, analyze, session, jobs,
            tui)


class Parser(argparse.ArgumentParser):
    """argparse's parser, failing the way every other CLI error does: `error:` and `hint:` on
    stderr and exit status 2, instead of a usage block. Sub-parsers are of the same class
    (argparse makes them of their parent's), so their `prog` names the command in the hint."""

    def error(self, message: str) -> NoReturn:
        print_error(message, f"`{self.prog} --help` lists its arguments")
        raise SystemExit(2)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        """argparse's parse, also recording in `command_prog` the `prog` of the innermost parser
        it went through (`lsn-explorer model info`): a sub-parser's parse ends first and sets it,
        and argparse copies it up; the parsers around it leave it as it is."""
        parsed, extra = super().parse_known_args(args, namespace)
        if getattr(parsed, "command_prog", None) is None:
            parsed.command_prog = self.prog
        return parsed, extra


def build_parser() -> argparse.ArgumentParser:
    """The `lsn-explorer` parser with every command's sub-parser."""
    parser = Parser(
        prog="lsn-explorer",
        description="Find and intervene on language-specific and transfer neurons in LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"lsn-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 2 for a user-facing error, 130 interrupted)."""
    parser = build_parser()
    # No arguments at all opens the app, the way a newcomer starts (`make run` does this too).
    try:
        args, extra = parser.parse_known_args(["tui"] if argv is None and len(sys.argv) == 1 else argv)
    except SystemExit as exc:  # --help and --version (0), or an argument refused (2, already printed)
        return exc.code if isinstance(exc.code, int) else 2
    if extra:  # found after the command's own parser finished: name that command in the hint
        print_error(f"unrecognized arguments: {' '.join(extra)}", f"`{args.command_prog} --help` lists its arguments")
        return 2
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return func(args)
    except LsnError as exc:
        print_error(exc.message, exc.hint)
        return 2
    except BrokenPipeError:
        # The reader went away (`eval show --csv | head`): not an error of ours; stop quietly.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # Paths are checked before work starts; this catches what the file system does later
        # (a full disk, a folder removed mid-run) with the same one-line error and hint.
        from lsn_explorer.paths import describe_os_error

        error = describe_os_error(exc)
        print_error(error.message, error.hint)
        return 2
    except sqlite3.DatabaseError as exc:
        # Session.open checks the header and schema; damage deeper in the file shows on first read.
        print_error(f"a session database is damaged ({exc})",
                    "see `lsn-explorer session check NAME`; restore the session folder from a copy")
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
