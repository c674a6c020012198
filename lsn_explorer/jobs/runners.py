"""What each job kind does: `RUNNERS` maps a spec's kind to its runner function.

A runner gets the open session, its validated spec, the job's `ProgressWriter` and the cancel
event (set by SIGTERM), and calls core. Its work is split into units, each stored once under a
key of its own by core, so that running it again after a kill -9 or a cancel skips what is done:
that is what makes `jobs resume` safe. It returns a one-line summary; a failure is raised
(`LsnError` for the user's fault, anything else is a bug and keeps its traceback in the log).
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from lsn_explorer.core.progress import Cancel, stop_if_cancelled
from lsn_explorer.errors import JobError
from lsn_explorer.jobs.progress import ProgressWriter
from lsn_explorer.jobs.spec import EvalJob, FinetuneJob, JobSpec, StatsJob
from lsn_explorer.session.store import Session

Runner = Callable[[Session, JobSpec, ProgressWriter, Cancel], str]
LOSS_POINTS = 500  # the newest losses kept in a fine-tune's progress, for the app's loss curve


def run_stats(session: Session, spec: JobSpec, progress: ProgressWriter, cancel: Cancel) -> str:
    """Statistics per language; a language is a unit (`compute_stats` skips one stored under
    the same run key, so a finished language is neither recomputed nor stored twice)."""
    from lsn_explorer.core.data.corpora import read_lines, resolve_corpora
    from lsn_explorer.core.model.loading import load_model
    from lsn_explorer.core.stats.runs import compute_stats

    assert isinstance(spec, StatsJob)  # RUNNERS pairs each kind with its own spec class
    enter(spec.workdir)
    corpora = resolve_corpora(spec.langs, spec.corpus, session.folder.parent)
    for path in corpora.values():
        read_lines(path)  # a corpus file changed since launch fails here, before the model loads
    stop_if_cancelled(cancel, "the statistics job")
    progress.message("loading the model")
    handle = load_model(spec.model, dtype=spec.dtype, four_bit=spec.four_bit, device=spec.device)
    settings = spec.settings()
    lines = []
    for done, (lang, path) in enumerate(corpora.items()):
        stop_if_cancelled(cancel, "the statistics job")
        progress.unit_started(lang, done, len(corpora))
        (row,) = compute_stats(session, handle, {lang: path}, settings, progress=progress, cancel=cancel,
                               warn=lambda m: print(f"warning: {m}", file=sys.stderr),
                               allow_mixed=spec.allow_mixed)
        state = "already in the session" if row["skipped"] else "collected"
        line = f"{lang}: {row['tokens']:,} tokens {state} (record {row['record']})"
        print(line, flush=True)
        lines.append(line)
        progress.unit_finished(done + 1, len(corpora), line)
    return f"{len(corpora)} languages: " + "; ".join(lines)


def run_eval(session: Session, spec: JobSpec, progress: ProgressWriter, cancel: Cancel) -> str:
    """An evaluation's missing batches (`core.evals.runner`: a stored batch is never scored again)."""
    from lsn_explorer.core.evals.runner import check_eval, find_eval, prepare_model, spec_of
    from lsn_explorer.core.evals.runner import run_eval as run

    assert isinstance(spec, EvalJob)  # RUNNERS pairs each kind with its own spec class
    enter(spec.workdir)
    evaluation = find_eval(session, spec.eval_name)
    samples = check_eval(session, spec_of(evaluation))  # data changed since launch fails here
    stop_if_cancelled(cancel, "the evaluation job")
    progress.message("loading the model")
    handle = prepare_model(session, evaluation, spec.model, dtype=spec.dtype, four_bit=spec.four_bit,
                           device=spec.device)
    progress.state["unit"] = "samples"
    progress.message(f"scoring {evaluation.name}")

    def report(label: str, done: int, total: int) -> None:
        # One label for the whole job, so speed and time left span it (core reports per cell).
        progress.state |= {"units_done": done, "units_total": total, "message": label}
        progress(evaluation.name, done, total)

    summary = run(session, handle, evaluation, progress=report, cancel=cancel, samples=samples)
    print(summary, flush=True)
    return summary


def run_finetune(session: Session, spec: JobSpec, progress: ProgressWriter, cancel: Cancel) -> str:
    """A masked-LoRA fine-tune; its units are optimizer steps. A resumed job continues from the
    run's last checkpoint (`core.finetune.train`), so it ends after the same number of steps."""
    from lsn_explorer.core.finetune.data import check_data
    from lsn_explorer.core.finetune.train import StepReport, finetune, load_base

    assert isinstance(spec, FinetuneJob)  # RUNNERS pairs each kind with its own spec class
    enter(spec.workdir)
    settings = spec.spec()
    check_data(settings)  # data removed since launch fails here, before the model loads
    stop_if_cancelled(cancel, "the fine-tuning job")
    progress.message("loading the model")
    handle = load_base(session, spec.model, settings, dtype=spec.dtype, device=spec.device)
    progress.state["unit"] = "steps"
    progress.message(f"training {settings.adapter_name()}")

    def report(step: StepReport) -> None:
        progress.state |= {"units_done": step.step, "units_total": step.total, "loss": round(step.loss, 4),
                           "lr": step.lr, "tokens": step.tokens, "tokens_per_s": round(step.tokens_per_s, 1),
                           "losses": step.losses[-LOSS_POINTS:]}  # the curve since step 1, resumed or not

    result = finetune(session, handle, settings, progress=progress, cancel=cancel, report=report,
                      warn=lambda m: print(f"warning: {m}", file=sys.stderr, flush=True))
    if result.skipped:
        line = f"adapter {result.name!r} was already in the session (record {result.record}); nothing trained"
    else:
        resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
        line = (f"adapter {result.name!r}: {result.steps} steps{resumed}, final loss {result.final_loss:.4f}, "
                f"{result.tokens:,} tokens (record {result.record})")
    print(line, flush=True)
    return line


def enter(workdir: str) -> None:
    """Run in the folder the job was launched from, where its relative paths point."""
    try:
        os.chdir(workdir)
    except OSError as exc:
        raise JobError(f"the job's working folder {workdir} cannot be entered: {exc.strerror or exc}",
                       "restore that folder (the job's relative paths point into it), or start a new job") from None


RUNNERS: dict[str, Runner] = {StatsJob.KIND: run_stats, EvalJob.KIND: run_eval, FinetuneJob.KIND: run_finetune}
