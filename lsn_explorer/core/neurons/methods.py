"""The identification methods' registry: names, one-line descriptions and parameters.

Torch-free, so the CLI can check parameters before any model work and front ends can list the
methods and their defaults before torch loads. The methods themselves are in `identify.py`
(LAPE, Act Prob 90p, random) and `transfer.py` (Type-1 / Type-2); `identification.py` runs them
against a session.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from lsn_explorer.core.specs import Spec
from lsn_explorer.errors import LsnError

METHODS: dict[str, str] = {
    "lape": "Language activation probability entropy (Tang et al. 2024): low-entropy neurons, global top 1%",
    "actprob90p": "Activation Probability 90p (Mondal et al. 2025): top 0.125%·L·d_ff per language",
    "type1": "Type-1 transfer neurons (Tezuka & Inoue 2025): move states into the shared space, early layers",
    "type2": "Type-2 transfer neurons (Tezuka & Inoue 2025): move states back out to the language, late layers",
    "random": "Random baseline: same size and layer range as a given set, excluding it (seeded)",
}


TITLES: dict[str, str] = {"lape": "LAPE", "actprob90p": "Act Prob 90p", "type1": "Type-1", "type2": "Type-2",
                          "random": "random baseline"}
NEEDS: dict[str, str] = {  # what a method reads: "stats" (the session's), "model" (+ a parallel corpus), "reference"
    "lape": "stats", "actprob90p": "stats", "type1": "model", "type2": "model", "random": "reference"}


@dataclass(frozen=True)
class Param:
    """One parameter of a method: its default and the values it accepts (checked before any work)."""

    name: str
    default: Any
    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    choices: tuple[str, ...] = ()
    editable: bool = True  # offered in the app's parameter field

    def check(self, method: str, value: Any) -> Any:
        if self.choices:
            if value not in self.choices:
                raise LsnError(f"{method}: {self.name} {value!r} is not one of {', '.join(self.choices)}",
                               f"choose {' or '.join(self.choices)}")
            return value
        if self.kind is list:  # candidate layers: `1-4,7`, a list of ints, or `auto` (the depth share)
            if isinstance(value, str):
                return None if value.strip() == "auto" else parse_layers(value)
            return sorted({int(v) for v in value})
        try:
            number = self.kind(value)
            if self.kind is int and number != float(value):
                raise ValueError
        except (TypeError, ValueError):
            raise LsnError(f"{method}: {self.name} {value!r} is not a number" + (" (an integer)" if self.kind is int else ""),
                           f"give {'an integer' if self.kind is int else 'a number'} {self.rule()}"
                           + (f", e.g. {self.default}" if self.default is not None else "")) from None
        too_low = self.low is not None and (number < self.low or (self.low_open and number == self.low))
        too_high = self.high is not None and (number > self.high or (self.high_open and number == self.high))
        if too_low or too_high or number != number:  # the last: NaN
            raise LsnError(f"{method}: {self.name} {value} is out of range",
                           f"give a value in {self.rule()}" + (f", e.g. {self.default}" if self.default is not None else ""))
        return number

    def rule(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        return f"[{self.low:g}, ∞)" if self.low is not None else "(−∞, ∞)"


def share(name: str, default: float | None, *, below_one: bool = False, editable: bool = True) -> Param:
    """A parameter that is a share: in (0, 1], or in (0, 1) with `below_one`."""
    return Param(name, default, float, low=0.0, high=1.0, low_open=True, high_open=below_one, editable=editable)


PARAMS: dict[str, tuple[Param, ...]] = {
    # Defaults: Tang et al. 2024 (LAPE), Mondal et al. 2025 (Act Prob 90p), Tezuka & Inoue 2025.
    "lape": (share("top_rate", 0.01), share("filter_rate", 0.95, below_one=True),
             share("bar_ratio", 0.95, below_one=True),
             Param("variant", "consistent", str, choices=("consistent", "faithful"), editable=False)),
    "actprob90p": (share("rate", 0.00125),),
    "type1": (Param("top_n", 1000, int, low=1), share("depth", None, editable=False),
              Param("layers", None, list), Param("seed", 0, int, low=0, editable=False)),
    "type2": (Param("top_n", 1000, int, low=1), share("depth", None, editable=False),
              Param("layers", None, list), Param("seed", 0, int, low=0, editable=False)),
    "random": (Param("seed", 0, int, low=0),),
}
STATS_SELECTORS = ("site", "mode")  # lape / actprob90p: which statistics to read, not method params


def check_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate `params` of `method` before any model or session work; returns them typed.

    Raises `LsnError` naming the parameter, its accepted range and an example."""
    method = check_method(method)
    known = {p.name: p for p in PARAMS[method]}
    checked: dict[str, Any] = {}
    for key, value in params.items():
        if key in STATS_SELECTORS and method in ("lape", "actprob90p"):
            checked[key] = value
            continue
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            raise LsnError(f"{method} has no parameter {key!r}",
                           (f"did you mean {close[0]}? " if close else "") + f"parameters: {', '.join(known)}")
        if value is not None:
            checked[key] = known[key].check(method, value)
    if checked.get("depth") is not None and checked.get("layers") is not None:
        raise LsnError(f"{method}: both --depth and --layers were given", "give one of them")
    return checked


@dataclass(frozen=True)
class MethodSpec(Spec):
    """An identification run's method and parameters as stored with its neuron set; validated
    against the registry on construction."""

    KIND: ClassVar[str] = "identification"
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # frozen: the checked (typed) values replace what was given
        object.__setattr__(self, "method", check_method(self.method))
        object.__setattr__(self, "params", check_params(self.method, dict(self.params)))


def check_method(name: str) -> str:
    if name in METHODS:
        return name
    close = difflib.get_close_matches(name, list(METHODS), n=2)
    raise LsnError(f"unknown identification method {name!r}",
                   (f"did you mean {', '.join(close)}? " if close else "") + f"methods: {', '.join(METHODS)}")


def editable_defaults(method: str) -> dict[str, Any]:
    """The parameters a front end offers for editing, with their defaults."""
    return {p.name: "auto" if p.kind is list and p.default is None else p.default
            for p in PARAMS[check_method(method)] if p.editable}


def parse_layers(text: str) -> list[int]:
    """`1-4,7` → [1, 2, 3, 4, 7] (inclusive ranges)."""
    chosen: list[int] = []
    for part in text.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        try:
            chosen += list(range(int(first), int(last) + 1)) if dash else [int(first)]
        except ValueError:
            raise LsnError(f"bad layer list {text!r}", "write layers like 1-4 or 0,2,5 (inclusive ranges)") from None
    if not chosen:
        raise LsnError(f"bad layer list {text!r}", "write layers like 1-4 or 0,2,5 (inclusive ranges)")
    return sorted(set(chosen))


def format_layers(layers: Sequence[int]) -> str:
    """[1, 2, 3, 4, 7] → `1-4,7`."""
    parts, run = [], list(layers[:1])
    for layer in list(layers[1:]) + [None]:  # type: ignore[list-item]
        if layer is not None and layer == run[-1] + 1:
            run.append(layer)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [layer] if layer is not None else []
    return ",".join(parts)
