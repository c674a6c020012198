"""The project's closed vocabularies, torch-free: sites, statistics modes, intervention values
and positions. Everything that names a site or a percentile imports it from here, so the TUI can
build its choices before torch loads and no module needs another just for a constant.
"""

from __future__ import annotations

from typing import Literal

# Sites of a gated MLP, in the papers' notation: g = gate_proj(x), s = act_fn(g), a = s · up_proj(x).
Site = Literal["g", "s", "a"]
SITES: tuple[Site, ...] = ("g", "s", "a")
SITE_NAMES: dict[str, str] = {
    "g": "gate pre-activation",
    "s": "activation output",
    "a": "down-projection input",
}
WRITE_SITES: tuple[Site, ...] = ("s", "a")  # where interventions write (g is only read)

# Statistics modes: consistent (global, streaming) or faithful (the Mondal et al. code).
Mode = Literal["consistent", "faithful"]
MODES: tuple[str, ...] = ("consistent", "faithful")

# The percentile values of Mondal et al. (2025); `stats` collects exactly these.
PERCENTILES: tuple[int, ...] = (5, 10, 25, 50, 75, 90, 95)
STAT_VALUES: tuple[str, ...] = ("mean",) + tuple(f"p{p}" for p in PERCENTILES)
VALUES: tuple[str, ...] = ("zero",) + STAT_VALUES + ("const", "scale")
POSITIONS: tuple[str, ...] = ("all", "prompt", "generated", "last")
Phase = Literal["prompt", "decode"]  # a forward pass over given text counts as "prompt"
