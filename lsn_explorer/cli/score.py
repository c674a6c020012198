"""`lsn-explorer score`: one task sample (XNLI, XQuAD, MKQA) or a text file, scored with and
without interventions; scoring and the record come from `core.tasks.scoring`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

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
from lsn_explorer.core.tasks.registry import TASKS
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers
    from lsn_explorer.core.tasks.scoring import SampleScore


def register(sub: Subparsers) -> None:
    """Add `score` to the command parser's sub-parsers."""
    score = sub.add_parser("score", help="score one task sample (or a text) with and without interventions")
    add_model_args(score)
    add_placement_args(score)
    add_remote_args(score)
    add_session_args(score)
    score.add_argument("--task", choices=tuple(TASKS))  # the task registry's names
    score.add_argument("--lang", help="language code")
    score.add_argument("--sample", type=int, default=0, help="which sample (0-based)")
    score.add_argument("--file", help="score a text file's perplexity instead of a task sample")
    score.add_argument("--data-dir", default=None,
                       help="benchmark folder (default: the demo samples), or hf:xnli to read XNLI from the "
                            "Hugging Face hub (needs `pip install datasets`; any hf:DATASET with XNLI's fields)")
    score.add_argument("--split", default="test",
                       help="XNLI split: test | validation in a benchmark folder; train too with hf:")
    add_intervene_arg(score)
    add_adapter_arg(score)
    score.add_argument("--json", action="store_true", help=JSON_HELP)
    score.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from lsn_explorer.core.data.languages import get_language
    from lsn_explorer.core.tasks.registry import load_examples, pick, score_sample
    from lsn_explorer.core.tasks.scoring import record_score, score_text

    refuse_remote(args, session_decides=True)
    check_syntax(args.intervene)
    example: Any = None
    if args.file:
        text = _read_text(args.file)
    elif not args.task or not args.lang:
        raise LsnError("nothing to score", f"pass --task {'|'.join(TASKS)} --lang L --sample K, or --file TEXT")
    else:
        lang = get_language(args.lang).code
        example = pick(load_examples(args.task, lang, args.data_dir, args.split), args.sample, args.task, lang)
    with open_session(args) as session:
        check_sources(args, session)
        handle = session_model(args, session)
        _, plan = plans(args, handle, session)
        rows = [None, plan] if plan else [None]
        labels = ["baseline", "intervened"][: len(rows)]
        if example is None:
            score = score_text(handle, text, rows, labels)
        else:
            score = score_sample(handle, args.task, lang, example, rows, sample=args.sample, labels=labels)
        record_score(session, handle, score, args.intervene or [])
    _print_score(args, score)
    return 0


def _read_text(name: str) -> str:
    """The text of --file: UTF-8 and not empty."""
    from lsn_explorer.paths import input_file

    path = input_file(name, "text file")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise LsnError(f"text file {path} is not UTF-8 text", "convert it to UTF-8") from None
    if not text:
        raise LsnError(f"text file {path} is empty", "give a file with some text")
    return text


def _print_score(args: argparse.Namespace, score: SampleScore) -> None:
    if args.json:
        print(json.dumps({"shown": score.shown, "rows": [r.__dict__ for r in score.rows], "record": score.record},
                         ensure_ascii=False))
        return
    for key, value in score.shown.items():
        print(f"{key}: {value}")
    for row in score.rows:
        parts = [f"prediction {row.prediction!r}"] if row.prediction else []
        if row.probabilities:
            parts.append("p(entail, neutral, contra) = " + ", ".join(f"{p:.2f}" for p in row.probabilities))
            parts.append("correct" if row.correct else "wrong")
        if row.f1 is not None:
            parts.append(f"EM {row.exact_match:.2f} F1 {row.f1:.2f}")
        if row.token_f1 is not None:
            parts.append(f"token-id F1 {row.token_f1:.2f}")
        if row.perplexity is not None:
            parts.append(f"PPL {row.perplexity:.2f}")
        print(f"[{row.label}] " + "; ".join(parts))
