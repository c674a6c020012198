"""Where a model's layers go: accelerate's device map limits (`--max-memory`)."""

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
