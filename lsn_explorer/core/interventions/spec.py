"""Test-time interventions on neurons (SCIENCE.md §4): what to write, where, and when.

An `Intervention` names a neuron source (a stored neuron set and one of its languages, or a
hand-typed list), a value (zero, mean, P5…P95 of the language's own statistics, a constant, or a
scale factor), a site (s = activation output, default; a = down-projection input), the positions
it applies to (all, prompt, generated, last) and a mode. In faithful mode the values are the
language's g statistics (batch-averaged, as the Mondal code computed them) written into s.

The compact spec syntax, used by the CLI, the session and the TUI alike:

    SOURCE[:LANG]=VALUE[@POSITIONS][/SITE][/faithful]

    lape:zh=p90            LAPE·zh neurons set to zh's own P90 at every position
    type1:ja=zero@prompt   Type-1·ja neurons zeroed on the prompt only
    lape:hi=mean/a         at the down-projection input instead of the activation output
    3.17,5.200=zero@last   a hand-typed list of layer.index pairs, last prompt token only
    lape:zh=x0.5           scaled by 0.5;  lape:zh=1.5  set to the constant 1.5

`resolve.py` turns interventions into an `EditPlan` (`apply.py`) for one model: per layer and site, one index
tensor and one (multiplier, addend) pair per neuron, so each layer gets one indexed write however
many interventions are active. Several interventions compose in the order given — each acts on
what the previous ones left (an overwrite after anything wins; a scale after an overwrite scales
the written value). Positions: "prompt" covers every position of the prompt pass (and every
position of a forward pass over given text); "generated" covers the decoding steps of a
generation; "last" is the final prompt token (the final real token of each row in a forward pass).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lsn_explorer.core.data.languages import get_language
from lsn_explorer.core.specs import Spec
from lsn_explorer.core.vocab import MODES, POSITIONS, STAT_VALUES, VALUES, WRITE_SITES
from lsn_explorer.errors import LsnError

SYNTAX = ("SOURCE[:LANG]=VALUE[@POSITIONS][/SITE][/faithful], e.g. lape:zh=p90, type1:ja=zero@prompt, "
          "3.17,5.200=zero; values: zero mean p5 p10 p25 p50 p75 p90 p95 NUMBER xFACTOR; "
          "positions: all prompt generated last; sites: s a")
_PAIRS = re.compile(r"^\d+\.\d+(,\d+\.\d+)*$")
_SOURCE = re.compile(r"^(#\d+|[A-Za-z_][\w.-]*)$")


class InterventionError(LsnError):
    """An intervention spec that cannot be parsed or resolved."""


@dataclass(frozen=True)
class Intervention(Spec):
    """One intervention, independent of any loaded model (serialisable by its spec).

    Validated on construction: an unknown value, site, position or mode is an `InterventionError`.
    """

    KIND: ClassVar[str] = "intervention"

    source: str  # a stored neuron-set name, "#<record id>", or "list" (hand-typed `neurons`)
    lang: str | None = None  # whose neurons, and whose statistics the value comes from
    value: str = "zero"  # zero | mean | p5 … p95 | const | scale
    amount: float = 0.0  # the constant (value "const") or the factor (value "scale")
    site: str = "s"
    positions: str = "all"
    mode: str = "consistent"
    neurons: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        closed = (("value", self.value, VALUES), ("site", self.site, WRITE_SITES),
                  ("positions", self.positions, POSITIONS), ("mode", self.mode, MODES))
        problems = [f"{name} {value!r}" for name, value, choices in closed if value not in choices]
        if self.source == "list" and not self.neurons:
            problems.append("a neuron list with no neurons")
        if self.source != "list" and not _SOURCE.match(self.source or ""):
            problems.append(f"source {self.source!r}")
        if problems:
            raise InterventionError(f"invalid intervention: {', '.join(problems)}", f"syntax: {SYNTAX}")

    @property
    def spec(self) -> str:
        """The compact spec this intervention parses from."""
        source = ",".join(f"{l}.{i}" for l, i in self.neurons) if self.source == "list" else self.source
        value = {"const": _number(self.amount), "scale": "x" + _number(self.amount)}.get(self.value, self.value)
        text = f"{source}{':' + self.lang if self.lang else ''}={value}"
        text += f"@{self.positions}" if self.positions != "all" else ""
        text += f"/{self.site}" if self.site != "s" else ""
        return text + ("/faithful" if self.mode == "faithful" else "")

    @property
    def label(self) -> str:
        """Short human-readable form, e.g. "lape·zh = p90 @prompt"."""
        who = f"{self.source}·{self.lang}" if self.lang else self.source
        if self.source == "list":
            who = f"{len(self.neurons)} listed" + (f"·{self.lang}" if self.lang else "")
        value = {"const": _number(self.amount), "scale": "×" + _number(self.amount)}.get(self.value, self.value)
        extras = [f"@{self.positions}"] if self.positions != "all" else []
        extras += [f"site {self.site}"] if self.site != "s" else []
        extras += ["faithful"] if self.mode == "faithful" else []
        return f"{who} = {value}" + (" " + " ".join(extras) if extras else "")

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["neurons"] = [list(p) for p in self.neurons]
        return data | {"spec": self.spec}

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "") -> "Intervention":
        fields = cls.fields_from_json({k: v for k, v in data.items() if k != "spec"}, source)
        fields["neurons"] = tuple(tuple(int(x) for x in p) for p in fields.get("neurons", ()))
        if "source" not in fields:
            raise InterventionError(f"{source or 'the stored intervention'} is incomplete: it names no source",
                                    "the record or file is damaged")
        return cls(**fields)


def _number(x: float) -> str:
    return f"{x:g}"


def parse_intervention(spec: str) -> Intervention:
    """Parse the compact syntax (module docstring); errors name the part that is wrong."""
    text = spec.strip()

    def bad(part: str) -> InterventionError:
        return InterventionError(f"bad intervention {spec!r}: {part}", f"syntax: {SYNTAX}")

    left, eq, right = text.partition("=")
    if not eq or not left or not right:
        raise bad("expected SOURCE[:LANG]=VALUE")
    source, _, lang = left.rpartition(":") if ":" in left else (left, "", "")
    neurons: tuple[tuple[int, int], ...] = ()
    if _PAIRS.match(source):
        neurons = tuple(tuple(int(x) for x in pair.split(".")) for pair in source.split(","))  # type: ignore[misc]
        source = "list"
    elif not _SOURCE.match(source):
        raise bad(f"source {source!r} is not a neuron-set name, #ID or a list like 3.17,5.200")
    if ":" in left and not lang:
        raise bad("empty language after ':'")
    lang_code = get_language(lang).code if lang else None
    value_part, *modifiers = right.split("/")
    value_text, _, positions = value_part.partition("@")
    if "@" in value_part and positions not in POSITIONS:
        raise bad(f"positions {positions!r} (choose {', '.join(POSITIONS)})")
    value, amount = _parse_value(value_text.strip().lower(), bad)
    site, mode = "s", "consistent"
    for modifier in modifiers:
        if modifier in WRITE_SITES:
            site = modifier
        elif modifier in ("faithful", "consistent"):
            mode = modifier
        else:
            raise bad(f"modifier {modifier!r} (a site s|a, or faithful)")
    if mode == "faithful" and site != "s":
        raise bad("faithful mode writes g statistics into s; drop the /a")
    if value in STAT_VALUES and lang_code is None:
        raise bad(f"value {value} comes from a language's statistics: add :LANG after the source")
    return Intervention(source, lang_code, value, amount, site, positions or "all", mode, neurons)


def _parse_value(text: str, bad: Any) -> tuple[str, float]:
    if text in ("zero",) + STAT_VALUES:
        return text, 0.0
    try:
        if text.startswith(("x", "×", "*")):
            return "scale", float(text[1:])
        return "const", float(text)
    except ValueError:
        raise bad(f"value {text!r} (choose zero, mean, p5…p95, a number, or xFACTOR)") from None
