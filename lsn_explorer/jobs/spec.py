"""Job specs: what a background job will do, as validated plain data stored in its job row.

A job kind is a spec class here (registered in `JOB_SPECS` by its `KIND`) plus a runner function
in `runners.py`. A spec validates itself on construction, so a bad value fails in the command
that launches the job, before any process starts. Torch-free at import: `jobs list` and the app
read job rows without loading torch (checks that need core's torch modules import them lazily).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lsn_explorer.core.specs import Spec, one_of
from lsn_explorer.errors import JobError


class JobSpec(Spec):
    """Base of every job kind's spec: `KIND`, `VERSION`, and a short name for job lists."""

    def title(self) -> str:
        """What `jobs list` calls the job."""
        return self.KIND


@dataclass(frozen=True)
class StatsJob(JobSpec):
    """Activation statistics for several languages (`lsn-explorer stats --detach`).

    Each language is a unit: `compute_stats` stores a finished language at once under a run key
    (model, corpus hash, settings), so a resumed job skips it instead of recomputing it.
    Paths (`model`, `corpus`) are kept as the user typed them, relative to `workdir`, where the
    worker runs: the records then carry the same provenance as a foreground `stats` run.
    """

    KIND: ClassVar[str] = "stats"
    langs: list[str] = field(default_factory=list)
    workdir: str = "."
    corpus: list[str] | None = None  # as `--corpus`: a folder, files, lang=FILE, or hf:wikipedia
    model: str | None = None  # None: the bundled demo model
    four_bit: bool = False
    dtype: str = "auto"
    device: str = "auto"
    # StatsSettings' fields, flat (checked by constructing one)
    site: str = "s"
    mode: str = "consistent"
    window: int | None = None
    batch_size: int = 4
    max_tokens: int | None = None
    bins: int = 1024
    allow_mixed: bool = False

    def __post_init__(self) -> None:
        from lsn_explorer.core.model.loading import DTYPES

        if not self.langs or not all(isinstance(lang, str) and lang for lang in self.langs):
            raise JobError("a statistics job needs at least one language", "pass --langs, e.g. --langs en,zh,hi")
        if len(set(self.langs)) != len(self.langs):
            raise JobError(f"languages repeat in {','.join(self.langs)}", "name each language once")
        one_of("dtype", self.dtype, DTYPES)
        self.settings()  # range and choice checks of StatsSettings, raised here

    def settings(self) -> Any:
        """The `StatsSettings` of this job (core's persisted statistics settings)."""
        from lsn_explorer.core.stats.runs import StatsSettings

        return StatsSettings(site=self.site, mode=self.mode, window=self.window,  # type: ignore[arg-type]
                             batch_size=self.batch_size, max_tokens=self.max_tokens, bins=self.bins)

    def title(self) -> str:
        return f"stats {','.join(self.langs)}"


@dataclass(frozen=True)
class EvalJob(JobSpec):
    """A full evaluation (`lsn-explorer eval run --detach`, the app's Evaluate action).

    The evaluation itself (task, languages, rows) is stored in the session's `evals` table under
    `eval_name` when the job is launched; the job names it and says which model to load. Its units
    are batches of one cell, each stored once (`core.evals.runner`), so a resumed job scores only
    what is missing.
    """

    KIND: ClassVar[str] = "eval"
    eval_name: str = ""
    workdir: str = "."
    model: str | None = None  # None: the model the session's records were made with, else the demo
    four_bit: bool = False
    dtype: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        from lsn_explorer.core.model.loading import DTYPES

        if not self.eval_name:
            raise JobError("an evaluation job needs the name of a stored evaluation", "start it with `eval run --detach`")
        one_of("dtype", self.dtype, DTYPES)

    def title(self) -> str:
        return f"eval {self.eval_name}"


@dataclass(frozen=True)
class FinetuneJob(JobSpec):
    """A masked-LoRA fine-tune (`lsn-explorer finetune --detach`, the app's Fine-tune form).

    `finetune` is the `FinetuneSpec` as JSON, its neuron set pinned to a record id at launch. Its
    units are optimizer steps: the run checkpoints every `checkpoint_every` steps, so a resumed
    job continues from the last checkpoint and ends after the same number of steps.
    """

    KIND: ClassVar[str] = "finetune"
    finetune: dict[str, Any] = field(default_factory=dict)
    workdir: str = "."
    model: str | None = None  # None: the model the session's records were made with, else the demo
    dtype: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        from lsn_explorer.core.model.loading import DTYPES

        one_of("dtype", self.dtype, DTYPES)
        self.spec()  # the fine-tune's own checks, raised here

    def spec(self) -> Any:
        """The validated `FinetuneSpec` (core's persisted fine-tune settings)."""
        from lsn_explorer.core.finetune.config import FinetuneSpec

        return FinetuneSpec.from_json(self.finetune, source="the fine-tune of a job")

    def title(self) -> str:
        return str(self.spec().title())


JOB_SPECS: dict[str, type[JobSpec]] = {StatsJob.KIND: StatsJob, EvalJob.KIND: EvalJob, FinetuneJob.KIND: FinetuneJob}


def spec_from_json(data: dict[str, Any], *, source: str = "") -> JobSpec:
    """The spec stored in a job row, of the class its `kind` names.

    Raises:
        JobError: a kind this version does not know (a typo, or a newer lsn-explorer wrote it).
    """
    kind = data.get("kind") if isinstance(data, dict) else None
    cls = JOB_SPECS.get(str(kind))
    if cls is None:
        close = difflib.get_close_matches(str(kind), JOB_SPECS, n=1)
        raise JobError(f"{source or 'job'}: unknown job kind {kind!r}",
                       f"did you mean {close[0]}?" if close else
                       f"known kinds: {', '.join(JOB_SPECS)}; a newer lsn-explorer may have written it")
    return cls.from_json(data, source=source)
