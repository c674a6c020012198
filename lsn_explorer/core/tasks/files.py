"""Where task files live: the demo samples in `assets/tasks` and real benchmark folders.

Both use the benchmarks' own formats and naming, so one loader reads either. Language codes go
through the language table (our `zh` is XNLI `zh` and MKQA `zh_cn`). A data source written
`hf:DATASET` (e.g. `hf:xnli`) is not a folder but a Hugging Face dataset; `hub_dataset` tells the
two apart, `registry.load_examples` sends it to the task's hub loader, and `load_hub_split` is the
one place that calls `datasets.load_dataset` and turns its failures into one-line errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsn_explorer.assets import DEMO_TASKS_DIR
from lsn_explorer.core.data.languages import dataset_code
from lsn_explorer.errors import TaskFileError

TASKS: tuple[str, ...] = ("xnli", "xquad", "mkqa")
HUB_PREFIX = "hf:"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
NOT_UTF8_HINT = "benchmark files are UTF-8 text; convert it (iconv -t UTF-8) or check the path"
_DETAIL_CHARS = 200  # a missing config lists every config the dataset has; keep the message one short line

# task → (demo pattern under assets/tasks, real pattern under a benchmark data folder)
_PATTERNS: dict[str, tuple[str, str]] = {
    "xnli": ("xnli/xnli_demo_{code}.tsv", "xnli/xnli_{split}_{code}.tsv"),
    "xquad": ("xquad/xquad_demo.{code}.json", "xquad/xquad.{code}.json"),
    "mkqa": ("mkqa/mkqa_demo.jsonl", "mkqa/*.jsonl*"),
}


def read_utf8(path: Path, what: str) -> str:
    """The text of a benchmark file, with a one-line error when it is not UTF-8 (a binary or
    legacy-encoded file named by mistake).

    Raises:
        TaskFileError: the file's bytes are not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFileError(f"{what} {path} is not UTF-8 text (byte {exc.start})", NOT_UTF8_HINT) from None


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


@dataclass(frozen=True)
class HubSource:
    """What the messages of a benchmark's hub loader name: the benchmark, its usual hub id, and
    how to do without the hub."""

    title: str  # as users know it: XNLI, XQuAD, MKQA, FLORES+
    dataset: str  # the default hub id, e.g. google/xquad
    local_hint: str  # e.g. "or pass --data-dir with a folder of XQuAD JSON files (...)"


def load_hub_split(source: HubSource, dataset: str, config: str | None, split: str) -> Any:
    """One split of a Hugging Face dataset, read with the optional `datasets` package.

    `datasets.load_dataset` keeps what it downloads in its cache (`HF_DATASETS_CACHE`, by default
    under ~/.cache/huggingface), so only the first call needs the network; no second cache is kept.

    Args:
        source: the benchmark, for the messages.
        dataset: hub id (`xnli`, `google/xquad`, or a copy with the same fields).
        config: the dataset's config (subset) name, or None for its only one.
        split: the dataset's own split name.

    Returns:
        What `load_dataset(dataset, config, split=split)` returns: iterable rows (dicts), with
        `features` describing the columns.

    Raises:
        TaskFileError: `datasets` is not installed, or the load failed (offline and not cached,
            network, unknown dataset, gated dataset without access, unknown config or split,
            a loading script that the installed `datasets` no longer runs), or the split is empty.
    """
    local_hint = source.local_hint
    try:
        import datasets
    except ImportError as exc:
        raise TaskFileError(
            f"reading {source.title} from the Hugging Face hub needs the `datasets` package, which is not installed",
            f"pip install datasets, {local_hint}",
        ) from exc
    what = f"{dataset} ({', '.join(part for part in (config, split) if part)})"
    try:
        rows = datasets.load_dataset(dataset, config, split=split)
    except (OSError, ValueError, RuntimeError) as exc:
        # Network failures, a missing or gated dataset and offline mode all surface as OSError
        # subclasses (ConnectionError, FileNotFoundError, HTTP errors); a bad config or split as
        # ValueError; a dataset that still ships a loading script as RuntimeError (datasets >= 4).
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if len(detail) > _DETAIL_CHARS:
            detail = detail[:_DETAIL_CHARS - 1] + "…"
        if any(os.environ.get(var, "") not in ("", "0") for var in _OFFLINE_VARS):
            raise TaskFileError(
                f"cannot load {what} while offline: it is not in the local datasets cache",
                f"unset {' / '.join(_OFFLINE_VARS)} to download it once, {local_hint}",
            ) from exc
        if "gated" in detail.lower():
            hint = f"accept the dataset's terms on its hub page, then log in (hf auth login) or set HF_TOKEN, {local_hint}"
        elif isinstance(exc, RuntimeError):
            hint = f"the installed datasets no longer runs loading scripts: use a Parquet copy (hf:OWNER/NAME), {local_hint}"
        elif isinstance(exc, ValueError):
            hint = f"check that {dataset} has the config {config!r} and the split {split!r}, {local_hint}"
        else:
            hint = f"check the network and the dataset id (e.g. hf:{source.dataset}), {local_hint}"
        raise TaskFileError(f"cannot load {what} from the Hugging Face hub: {detail}", hint) from exc
    if len(rows) == 0:
        raise TaskFileError(f"{what} has no rows", "choose another split or language")
    return rows
