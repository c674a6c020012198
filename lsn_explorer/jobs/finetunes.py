"""Starting a fine-tune as a background job: what `finetune --detach` and the app's Fine-tune form
both call. Torch-free at import: checking the training data imports core's torch modules inside
`check_finetune`; the worker loads the model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lsn_explorer.jobs.control import launch
from lsn_explorer.jobs.spec import FinetuneJob

if TYPE_CHECKING:
    from lsn_explorer.core.finetune.config import FinetuneSpec
    from lsn_explorer.session.store import Session


def check_finetune(spec: FinetuneSpec, model: str | None) -> str:
    """The checks that need neither the session nor a model: the model source exists and the
    task has training data in the language. Returns where the data is.

    Raises:
        ModelLoadError: the model source does not exist.
        CorpusError / TaskFileError / FinetuneError: no training data for the language.
    """
    from lsn_explorer.core.finetune.data import check_data
    from lsn_explorer.core.model.loading import check_source

    check_source(model)
    return check_data(spec)


def pin_finetune(session: Session, spec: FinetuneSpec) -> FinetuneSpec:
    """`spec` named (`adapter_name`, from the set's name before it is pinned) and its neuron set
    pinned to a record id (`config.pinned`: the set exists and has the languages).

    Raises:
        FinetuneError: the session has no such set, or it lacks a language or its neurons.
    """
    from lsn_explorer.core.finetune.config import pinned

    return pinned(replace(spec, name=spec.adapter_name()), session)


def start_finetune(session: Session, spec: FinetuneSpec, *, workdir: str, model: str | None = None,
                   dtype: str = "auto", device: str = "auto") -> tuple[FinetuneSpec, int]:
    """Check, name and pin `spec` (see `check_finetune`, `pin_finetune`) and start its job;
    returns the launched spec and the job id. Bad input raises before a job is stored.

    Args:
        session: where the job runs and the adapter is stored.
        spec: what to train.
        workdir: where the worker runs, so relative data paths mean what they meant at launch.
        model, dtype, device: the model the worker loads (None: the session's, else the demo).
    """
    check_finetune(spec, model)
    spec = pin_finetune(session, spec)
    job_id = launch(session, FinetuneJob(finetune=spec.to_json(), workdir=workdir, model=model, dtype=dtype,
                                         device=device))
    return spec, job_id
