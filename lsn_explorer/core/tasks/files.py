"""Where task files live: the demo samples in `assets/tasks` and real benchmark folders.

Both use the benchmarks' own formats and naming, so one loader reads either. Language codes go
through the language table (our `zh` is XNLI `zh` and MKQA `zh_cn`). A data source written
`hf:DATASET` (e.g. `hf:xnli`) is not a folder but a Hugging Face dataset; `hub_dataset` tells the
two apart and `scoring.load_examples` sends it to the hub loader.
"""

from __future__ import annotations

import os
from pathlib import Path

from lsn_explorer.assets import DEMO_TASKS_DIR
from lsn_explorer.core.data.languages import dataset_code
from lsn_explorer.errors import TaskFileError

TASKS: tuple[str, ...] = ("xnli", "xquad", "mkqa")
HUB_PREFIX = "hf:"

# task → (demo pattern under assets/tasks, real pattern under a benchmark data folder)
_PATTERNS: dict[str, tuple[str, str]] = {
    "xnli": ("xnli/xnli_demo_{code}.tsv", "xnli/xnli_{split}_{code}.tsv"),
    "xquad": ("xquad/xquad_demo.{code}.json", "xquad/xquad.{code}.json"),
    "mkqa": ("mkqa/mkqa_demo.jsonl", "mkqa/*.jsonl*"),
}


def hub_dataset(data_dir: str | Path | None) -> str | None:
    """The dataset id of a `hf:DATASET` data source; None for a folder or the demo samples.

    Raises:
        TaskFileError: `hf:` without a dataset id.
    """
    if data_dir is None:
        return None
    text = os.fspath(data_dir)
    if not text.startswith(HUB_PREFIX):
        return None
    dataset = text.removeprefix(HUB_PREFIX).strip()
    if not dataset:
        raise TaskFileError(f"{text!r} names no dataset", "write the hub id after hf:, e.g. hf:xnli")
    return dataset


def task_file(task: str, lang: str, data_dir: str | Path | None = None, split: str = "test") -> Path:
    """Path of the file holding `task` in `lang`.

    Args:
        task: xnli | xquad | mkqa.
        lang: our language code.
        data_dir: a benchmark folder laid out like `../shared/data`; None means the demo samples.
        split: XNLI split in real folders (test | validation).

    Raises:
        TaskFileError: unknown task, or no file for that language.
        LanguageError: the benchmark does not cover the language.
    """
    if task not in _PATTERNS:
        raise TaskFileError(f"unknown task {task!r}", f"tasks: {', '.join(TASKS)}")
    code = dataset_code(task, lang)  # type: ignore[arg-type]
    demo, real = _PATTERNS[task]
    root = DEMO_TASKS_DIR if data_dir is None else Path(data_dir)
    pattern = (demo if data_dir is None else real).format(code=code, split=split)
    matches = sorted(root.glob(pattern))
    if not matches:
        raise TaskFileError(
            f"no {task} file for {lang} under {root} (looked for {pattern})",
            "pass --data-dir with a folder laid out like the benchmark's release, or another language",
        )
    return matches[0]
