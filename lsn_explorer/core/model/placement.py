"""Where a model's layers go: the device named by `--device`, and accelerate's device map limits
(`--max-memory`)."""

from __future__ import annotations

import re

from lsn_explorer.errors import ModelLoadError

MEMORY = re.compile(r"^\d+(\.\d+)?\s*(GiB|MiB|KiB|GB|MB|KB)$")


def parse_max_memory(text: str | None) -> dict[int | str, str] | None:
    """`0=20GiB,1=20GiB,cpu=64GiB` as accelerate's max_memory ({0: "20GiB", ..., "cpu": "64GiB"})."""
    if not text:
        return None
    limits: dict[int | str, str] = {}
    for part in text.split(","):
        name, _, amount = part.strip().partition("=")
        name = name.strip().lower()
        if not (name.isdigit() or name == "cpu") or not MEMORY.match(amount.strip()):
            raise ModelLoadError(f"bad --max-memory part {part.strip()!r}",
                                 "write DEVICE=AMOUNT pairs, e.g. --max-memory 0=20GiB,1=20GiB,cpu=64GiB")
        limits[int(name) if name.isdigit() else name] = amount.strip().replace(" ", "")
    return limits


def resolve_device(device: str) -> str:
    """`auto` → cuda when torch sees a GPU, else cpu; `cpu`, `cuda`, `cuda:N`, `mps` are checked
    against what this machine has, so a typo or a missing GPU is an error with a hint, not a
    RuntimeError from deep inside torch."""
    import torch

    text = str(device).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text)
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise ModelLoadError(f"unknown device {device!r}", "use auto, cpu, cuda or cuda:N")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelLoadError(f"device {device!r} asked for, but torch sees no CUDA GPU here",
                                 "use --device cpu (or auto); on a GPU box check CUDA_VISIBLE_DEVICES")
        if index is not None and int(index) >= count:
            raise ModelLoadError(f"device {device!r} does not exist: torch sees {count} GPU(s)",
                                 f"use cuda:0 … cuda:{count - 1}")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but this machine has no Apple GPU", "use --device cpu")
    return text
