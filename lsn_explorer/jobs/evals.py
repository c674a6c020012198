"""Starting an evaluation as a background job: what `eval run --detach` and the app's Evaluate
action both call. Torch-free: the model source is only checked here; the worker loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsn_explorer.core.evals.runner import stored_eval
from lsn_explorer.errors import JobError
from lsn_explorer.jobs.control import launch
from lsn_explorer.jobs.spec import EvalJob

if TYPE_CHECKING:
    from lsn_explorer.core.evals.grid import EvalSpec
    from lsn_explorer.session.evals import EvalRow
    from lsn_explorer.session.store import Session


def start_eval(session: Session, spec: EvalSpec, name: str | None = None, *, workdir: str, model: str | None = None,
               four_bit: bool = False, dtype: str = "auto", device: str = "auto") -> tuple[EvalRow, int]:
    """Store the evaluation (or find the unfinished one called `name`), start its job and link
    the two; returns the evaluation and the job id. Check the spec with `check_eval` first.

    Args:
        session: where the evaluation and the job are stored.
        spec: what to evaluate.
        name: the evaluation's name (None: `TASK-N`, see `stored_eval`).
        workdir: where the worker runs, so relative data paths mean what they meant at launch.
        model, four_bit, dtype, device: the model the worker loads (None: the session's, else the demo).

    Raises:
        ModelLoadError: the model source does not exist (checked before anything is stored).
        LsnError: an evaluation called `name` has other settings or has finished.
        JobError: the worker could not be started.
    """
    from lsn_explorer.core.model.loading import check_source

    check_source(model)  # a typo fails here, not minutes later in the worker
    evaluation = stored_eval(session, spec, name)
    refuse_if_running(session, evaluation)
    job_id = launch(session, EvalJob(eval_name=evaluation.name, workdir=workdir, model=model, four_bit=four_bit,
                                     dtype=dtype, device=device))
    session.set_eval(evaluation.id, job=job_id)
    return evaluation, job_id


def refuse_if_running(session: Session, evaluation: EvalRow) -> None:
    """Refuse to run an evaluation whose own job still runs (both would score the same batches).

    Raises:
        JobError: its job is queued or running.
    """
    from lsn_explorer.jobs.control import ACTIVE, status

    if evaluation.job is not None and status(session, evaluation.job).state in ACTIVE:
        raise JobError(f"evaluation {evaluation.name!r} is running as job {evaluation.job}",
                       f"wait for it: `lsn-explorer jobs wait {evaluation.job} --session {session.name}`")
