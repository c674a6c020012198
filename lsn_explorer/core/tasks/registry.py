"""The one registry of tasks: each row names a benchmark's loader, what a sample shows and how it
is scored, so the CLI, the workbench and the TUI list and run tasks from here (a new task is a row).

`load_examples`, `pick`, `describe` and `score_sample` are the task-independent entry points.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lsn_explorer.core.progress import Cancel
from lsn_explorer.core.tasks import scoring
from lsn_explorer.core.tasks.files import hub_dataset, task_file
from lsn_explorer.core.tasks.mkqa import load_mkqa, load_mkqa_hub
from lsn_explorer.core.tasks.xnli import load_xnli, load_xnli_hub
from lsn_explorer.core.tasks.xquad import load_xquad, load_xquad_hub
from lsn_explorer.errors import TaskFileError

if TYPE_CHECKING:
    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle


@dataclass(frozen=True)
class Task:
    """One benchmark: how its examples load, what a sample shows, how one is scored."""

    name: str
    title: str
    metric: str
    load: Callable[[Path, str], list[Any]]  # (file, lang) → examples
    describe: Callable[[Any], dict[str, Any]]
    score: Callable[..., scoring.SampleScore]  # (handle, lang, example, plans, names, sample, cancel)
    hub: Callable[[str, str, str], list[Any]] | None = None  # (lang, split, dataset), for hf:DATASET


TASKS: dict[str, Task] = {task.name: task for task in (
    Task("xnli", "XNLI", "accuracy", lambda path, lang: load_xnli(path), scoring.describe_xnli,
         scoring.score_xnli, load_xnli_hub),
    Task("xquad", "XQuAD", "SQuAD EM / F1", lambda path, lang: load_xquad(path), scoring.describe_xquad,
         scoring.score_xquad, load_xquad_hub),
    Task("mkqa", "MKQA", "token F1", load_mkqa, scoring.describe_mkqa, scoring.score_mkqa, load_mkqa_hub),
)}


def get_task(name: str) -> Task:
    """The task called `name`; a typo gets "did you mean"."""
    if name in TASKS:
        return TASKS[name]
    close = difflib.get_close_matches(name, list(TASKS), n=1)
    raise TaskFileError(f"unknown task {name!r}",
                        (f"did you mean {close[0]}? " if close else "") + f"tasks: {', '.join(TASKS)}")


def load_examples(task: str, lang: str, data_dir: str | Path | None = None, split: str = "test") -> list[Any]:
    """Every example of `task` in `lang`.

    Args:
        task: a registry name (xnli | xquad | mkqa).
        lang: our language code.
        data_dir: None for the demo samples, a benchmark folder, or `hf:DATASET` (`hf:xnli`,
            `hf:google/xquad`, `hf:apple/mkqa`) to read the Hugging Face dataset with `datasets`,
            which caches the download.
        split: XNLI split (test | validation; the hub also has train). XQuAD and MKQA have one
            split each, read as `test` (on the hub also by its own name: validation, train).

    Raises:
        TaskFileError: unknown task, missing or malformed file, or a hub source that cannot be read.
        LanguageError: the benchmark does not cover the language.
    """
    spec = get_task(task)
    dataset = hub_dataset(data_dir)
    if dataset is not None:
        if spec.hub is None:
            on_hub = [name for name, row in TASKS.items() if row.hub is not None]
            raise TaskFileError(f"{task} cannot be read from the Hugging Face hub (--data-dir {data_dir})",
                                f"pass a benchmark folder for {task}; tasks with a hub loader: {', '.join(on_hub)}")
        return spec.hub(lang, split, dataset)
    return spec.load(task_file(task, lang, data_dir, split), lang)


def pick(examples: Sequence[Any], sample: int, task: str, lang: str) -> Any:
    """Example number `sample`, or a clear error naming the valid range."""
    if not 0 <= sample < len(examples):
        raise TaskFileError(f"{task} {lang} has {len(examples)} samples; there is no sample {sample}",
                            f"choose --sample between 0 and {len(examples) - 1}")
    return examples[sample]


def describe(task: str, example: Any) -> dict[str, Any]:
    """What a sample shows a reader (premise and hypothesis, passage and question, answers...)."""
    return get_task(task).describe(example)


def score_sample(handle: ModelHandle, task: str, lang: str, example: Any, plans: Sequence[EditPlan | None],
                 *, sample: int = 0, labels: Sequence[str] | None = None,
                 cancel: Cancel | None = None) -> scoring.SampleScore:
    """Score one example once per plan (None = baseline); a set `cancel` stops it (`Cancelled`)."""
    names = list(labels) if labels else ["baseline" if p is None or not p.edits else
                                        " + ".join(iv.label for iv in p.interventions) for p in plans]
    return get_task(task).score(handle, lang, example, plans, names, sample, cancel)
