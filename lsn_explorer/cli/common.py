"""What several commands share: their common flags, opening the session and model they name,
checking `--intervene` specs, and printing a user-facing error.

Parsing and printing only: every helper calls one `core` or `session` function. Heavy libraries
are imported inside the helpers so that `--help` never loads torch.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # What `add_subparsers()` returns; each command module's `register(sub)` adds its parser there.
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

SESSIONS_DIR_HELP = "session store (default $LSN_SESSIONS_DIR or ./sessions)"
JSON_HELP = "machine-readable output"


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--model, --4bit, --dtype, --device, --trust-remote-code."""
    parser.add_argument("--model", default=None,
                        help="Hugging Face id or local checkpoint folder (default: the bundled demo model)")
    parser.add_argument("--4bit", dest="four_bit", action="store_true",
                        help="load in 4-bit NF4 (bitsandbytes, double quantisation, bf16 compute)")
    parser.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16 (default auto)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run Python code that ships with the checkpoint (off by default: "
                             "only for a checkpoint whose author you trust)")


def add_placement_args(parser: argparse.ArgumentParser) -> None:
    """--device-map auto and --max-memory: one model spread over several GPUs (accelerate)."""
    parser.add_argument("--device-map", choices=("auto",), default=None,
                        help="auto: spread the layers over the visible GPUs (then CPU memory) for a model "
                             "too big for one GPU")
    parser.add_argument("--max-memory", default=None, metavar="DEV=AMOUNT,...",
                        help="with --device-map: the most each device holds, e.g. 0=20GiB,1=20GiB,cpu=64GiB")


def placement(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of --device-map / --max-memory for the model loaders (none when the
    command has no such flags)."""
    from lsn_explorer.core.model.placement import parse_max_memory

    return {"device_map": getattr(args, "device_map", None),
            "max_memory": parse_max_memory(getattr(args, "max_memory", None))}


def refuse_placement(args: argparse.Namespace) -> None:
    """--device-map / --max-memory with --detach: a job loads its model on one device so far."""
    from lsn_explorer.errors import LsnError

    if getattr(args, "device_map", None) or getattr(args, "max_memory", None):
        raise LsnError("--device-map does not go with --detach yet: a job loads its model on one device",
                       "run the command in the foreground (in tmux or with nohup), or leave out --device-map")


def add_remote_args(parser: argparse.ArgumentParser) -> None:
    """--remote [ndif|local]: run the model's traces on NDIF, or the same round trip here (dry run)."""
    parser.add_argument("--remote", nargs="?", const="ndif", choices=("ndif", "local"), default=None,
                        help="run the model on NDIF (needs NDIF_API_KEY and a Hugging Face model id); "
                             "`--remote local`: a dry run here that sends each job through the same "
                             "serialization round trip, to prove it would go through (default: off)")


def refuse_remote(args: argparse.Namespace, *, session_decides: bool = False) -> None:
    """What --remote cannot go with, refused before any work: --detach, torchrun, the loading options
    of `check_remote`, and for NDIF a --model that is not a hub id. `session_decides`: without
    --model the session's model is used (checked when it is known)."""
    from lsn_explorer.core.distributed import from_environment
    from lsn_explorer.core.model.remote import check_hub_id, check_remote
    from lsn_explorer.errors import LsnError

    remote = getattr(args, "remote", None)
    if remote is None:
        return
    if getattr(args, "detach", False):
        raise LsnError("--remote does not go with --detach: a remote run waits for NDIF in the foreground",
                       "run the command in the foreground (in tmux or with nohup)")
    if from_environment() is not None:
        raise LsnError("--remote does not go with torchrun: NDIF runs the model on its own GPUs",
                       "start the command once, without torchrun")
    check_remote(remote, four_bit=args.four_bit, dtype=args.dtype, device=args.device,
                 device_map=getattr(args, "device_map", None), max_memory=getattr(args, "max_memory", None),
                 adapter=getattr(args, "adapter", None), trust_remote_code=args.trust_remote_code)
    if remote == "ndif" and (args.model is not None or not session_decides):
        check_hub_id(args.model)


def add_session_args(parser: argparse.ArgumentParser, default: str | None = "default") -> None:
    """--session (`default` None: nothing is recorded unless given) and --sessions-dir."""
    parser.add_argument("--session", default=default,
                        help=f"session name (default: {default or 'none, nothing is recorded'})")
    parser.add_argument("--sessions-dir", default=None, help=SESSIONS_DIR_HELP)


def add_adapter_arg(parser: argparse.ArgumentParser) -> None:
    """--adapter NAME (loaded by `session_model`)."""
    parser.add_argument("--adapter", default=None,
                        help="load this fine-tuned adapter of the session (see `lsn-explorer finetune list`)")


def add_intervene_arg(parser: argparse.ArgumentParser) -> None:
    """--intervene SPEC, repeatable."""
    parser.add_argument("--intervene", action="append", metavar="SPEC",
                        help="SOURCE[:LANG]=VALUE[@POSITIONS][/SITE][/faithful], e.g. lape:zh=zero "
                             "(repeat for several; see README)")


def lang_codes(text: str | None) -> list[str] | None:
    """`--langs en,zh,hi` as checked language codes; None when the flag was not given."""
    from lsn_explorer.core.data.languages import parse_languages

    return [lang.code for lang in parse_languages(text)] if text else None


def load(args: argparse.Namespace) -> Any:
    """The model named by --model / --4bit / --dtype / --device (default: the demo model), remote
    when the command has --remote and it was given."""
    from lsn_explorer.core.model.loading import load_model
    from lsn_explorer.core.model.remote import load_remote

    if getattr(args, "remote", None) is not None:
        return load_remote(args.model, args.remote, dtype=args.dtype, device=args.device, four_bit=args.four_bit,
                           trust_remote_code=args.trust_remote_code)
    return load_model(args.model, dtype=args.dtype, four_bit=args.four_bit, device=args.device,
                      trust_remote_code=args.trust_remote_code, **placement(args))


def session_model(args: argparse.Namespace, session: Any) -> Any:
    """--model when given, else the model the session's records were made with (else the demo),
    with --adapter loaded onto it when the command has that flag."""
    from lsn_explorer.core.model.session_model import load_session_model

    refuse_remote_code(args)
    return load_session_model(session, args.model, dtype=args.dtype, four_bit=args.four_bit, device=args.device,
                              adapter=getattr(args, "adapter", None), remote=getattr(args, "remote", None),
                              **placement(args))


def refuse_remote_code(args: argparse.Namespace) -> None:
    """--trust-remote-code where the model is loaded by a path that cannot pass it on yet: an
    error, rather than a flag that is silently dropped (the model then loads without the code)."""
    from lsn_explorer.errors import LsnError

    if getattr(args, "trust_remote_code", False):
        raise LsnError(f"--trust-remote-code is not supported by `{args.command}` yet",
                       "so far it is passed on by `model info`, `identify`, `demo` and `stats` "
                       "without --detach; leave it out here")


def open_session(args: argparse.Namespace, *, create: bool = True) -> Any:
    """The session named by --session in --sessions-dir."""
    from lsn_explorer.session.store import Session

    return Session.open(args.session, args.sessions_dir, create=create)


def check_syntax(specs: list[str] | None) -> None:
    """Syntax errors in --intervene specs, before the model loads."""
    from lsn_explorer.core.interventions.spec import parse_intervention

    for spec in specs or []:
        parse_intervention(spec)


def check_sources(args: argparse.Namespace, session: Any) -> None:
    """What --intervene names must exist before the model loads (a typo fails in a second)."""
    from lsn_explorer.core.interventions.resolve import check_sources as check
    from lsn_explorer.core.interventions.spec import parse_intervention

    check([parse_intervention(spec) for spec in args.intervene or []], session)


def plans(args: argparse.Namespace, handle: Any, session: Any) -> tuple[list[Any], Any]:
    """The --intervene specs parsed, and the edit plan they resolve to (None without any)."""
    from lsn_explorer.core.interventions.resolve import resolve
    from lsn_explorer.core.interventions.spec import parse_intervention

    interventions = [parse_intervention(spec) for spec in args.intervene or []]
    return interventions, resolve(interventions, handle, session) if interventions else None


def print_error(message: str, hint: str | None) -> None:
    """`error: ...` and `hint: ...` on stderr: how every user-facing failure is shown."""
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
