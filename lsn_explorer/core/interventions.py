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

`resolve` turns interventions into an `EditPlan` for one model: per layer and site, one index
tensor and one (multiplier, addend) pair per neuron, so each layer gets one indexed write however
many interventions are active. Several interventions compose in the order given — each acts on
what the previous ones left (an overwrite after anything wins; a scale after an overwrite scales
the written value). Positions: "prompt" covers every position of the prompt pass (and every
position of a forward pass over given text); "generated" covers the decoding steps of a
generation; "last" is the final prompt token (the final real token of each row in a forward pass).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Sequence

from lsn_explorer.core.languages import get_language
from lsn_explorer.errors import LsnError, StatsMissing

if TYPE_CHECKING:
    import torch

    from lsn_explorer.core.model import ModelHandle
    from lsn_explorer.core.neurons import NeuronSet
    from lsn_explorer.session.store import Session

# The percentile values of Mondal et al. (2025); `stats` collects exactly these. Kept here, with no
# torch import in this module, so the TUI can build its switch rows before torch is loaded.
PERCENTILES: tuple[int, ...] = (5, 10, 25, 50, 75, 90, 95)
STAT_VALUES: tuple[str, ...] = ("mean",) + tuple(f"p{p}" for p in PERCENTILES)
VALUES: tuple[str, ...] = ("zero",) + STAT_VALUES + ("const", "scale")
POSITIONS: tuple[str, ...] = ("all", "prompt", "generated", "last")
SITES: tuple[str, ...] = ("s", "a")
Phase = Literal["prompt", "decode"]  # a forward pass over given text counts as "prompt"
SYNTAX = ("SOURCE[:LANG]=VALUE[@POSITIONS][/SITE][/faithful], e.g. lape:zh=p90, type1:ja=zero@prompt, "
          "3.17,5.200=zero; values: zero mean p5 p10 p25 p50 p75 p90 p95 NUMBER xFACTOR; "
          "positions: all prompt generated last; sites: s a")
_PAIRS = re.compile(r"^\d+\.\d+(,\d+\.\d+)*$")
_SOURCE = re.compile(r"^(#\d+|[A-Za-z_][\w.-]*)$")


class InterventionError(LsnError):
    """An intervention spec that cannot be parsed or resolved."""


@dataclass(frozen=True)
class Intervention:
    """One intervention, independent of any loaded model (serialisable by its spec)."""

    source: str  # a stored neuron-set name, "#<record id>", or "list" (hand-typed `neurons`)
    lang: str | None = None  # whose neurons, and whose statistics the value comes from
    value: str = "zero"  # zero | mean | p5 … p95 | const | scale
    amount: float = 0.0  # the constant (value "const") or the factor (value "scale")
    site: str = "s"
    positions: str = "all"
    mode: str = "consistent"
    neurons: tuple[tuple[int, int], ...] = field(default=())

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
        data = asdict(self)
        data["neurons"] = [list(p) for p in self.neurons]
        return data | {"spec": self.spec}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Intervention":
        fields = {k: v for k, v in data.items() if k != "spec"}
        fields["neurons"] = tuple(tuple(int(x) for x in p) for p in fields.get("neurons", ()))
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
        if modifier in SITES:
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


# -- resolving against a model ------------------------------------------------------------------
@dataclass(frozen=True)
class Edit:
    """One intervention resolved for a model: per selected neuron its layer, index, multiplier
    and addend (the write is x ← x·mult + add; an overwrite has mult 0)."""

    intervention: Intervention
    layer: torch.Tensor  # [k] long
    index: torch.Tensor  # [k] long
    mult: torch.Tensor  # [k] float32
    add: torch.Tensor  # [k] float32


@dataclass
class LayerWrite:
    """Everything written at one (layer, site) in one phase: x[..., index] ← x·mult + add at the
    covered positions; at the last position (when `last_mult` is set) x·last_mult + last_add."""

    site: str
    index: torch.Tensor
    mult: torch.Tensor
    add: torch.Tensor
    last_mult: torch.Tensor | None = None
    last_add: torch.Tensor | None = None

    @property
    def overwrite(self) -> bool:
        return self.last_mult is None and bool((self.mult == 0).all())


@dataclass
class EditPlan:
    """Interventions compiled for one model: the writes of each phase, per layer."""

    edits: list[Edit]
    n_layers: int
    writes: dict[Phase, dict[int, list[LayerWrite]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.writes = {phase: _compile(self.edits, phase) for phase in ("prompt", "decode")}

    @property
    def interventions(self) -> list[Intervention]:
        return [e.intervention for e in self.edits]

    @property
    def empty(self) -> bool:
        return not any(self.writes.values())

    @property
    def decodes(self) -> bool:
        """Whether anything is written during the decoding steps of a generation."""
        return bool(self.writes["decode"])

    def neuron_count(self) -> int:
        return len({(int(l), int(i)) for e in self.edits for l, i in zip(e.layer, e.index)})


def _covers(positions: str, phase: Phase) -> tuple[bool, bool]:
    """(all positions, last position only) for an intervention's positions in a phase."""
    if phase == "prompt":
        return positions in ("all", "prompt"), positions == "last"
    return positions in ("all", "generated"), False


def _compile(edits: list[Edit], phase: Phase) -> dict[int, list[LayerWrite]]:
    """Compose the edits of a phase into one LayerWrite per (layer, site), sites in forward order."""
    import torch

    out: dict[int, list[LayerWrite]] = {}
    for layer in sorted({int(l) for e in edits for l in e.layer}):
        for site in SITES:
            active = [(e, *_covers(e.intervention.positions, phase)) for e in edits if e.intervention.site == site]
            active = [(e, full, last, e.layer == layer) for e, full, last in active if full or last]
            active = [(e, full, last, mask) for e, full, last, mask in active if bool(mask.any())]
            if not active:
                continue
            index = torch.unique(torch.cat([e.index[mask] for e, _, _, mask in active]))
            mult, add = torch.ones(len(index)), torch.zeros(len(index))
            last_mult, last_add = mult.clone(), add.clone()
            any_last = False
            for e, full, last, mask in active:
                at = torch.searchsorted(index, e.index[mask])
                m, a = e.mult[mask], e.add[mask]
                if full:  # x ← m·(mult·x + add) + a
                    mult[at], add[at] = m * mult[at], m * add[at] + a
                last_mult[at], last_add[at] = m * last_mult[at], m * last_add[at] + a
                any_last |= last
            write = LayerWrite(site, index, mult, add)
            if any_last:
                write.last_mult, write.last_add = last_mult, last_add
            out.setdefault(layer, []).append(write)
    return out


def apply_write(proxy: Any, write: LayerWrite, last_position: torch.Tensor | None) -> None:
    """Write into `proxy` ([batch, seq, d_ff] activations inside a trace) in place.

    `last_position` [batch] gives each row's last real token (None: the final column).
    """
    import torch

    index = write.index.to(proxy.device)
    if write.overwrite:
        proxy[..., index] = write.add.to(proxy.device, proxy.dtype)
        return
    current = proxy[..., index]
    mult = write.mult.to(current.device, current.dtype).expand(current.shape)
    add = write.add.to(current.device, current.dtype).expand(current.shape)
    if write.last_mult is not None:
        rows = torch.arange(current.shape[0], device=current.device)
        cols = (torch.full_like(rows, current.shape[1] - 1) if last_position is None
                else last_position.to(current.device))
        mult, add = mult.clone(), add.clone()
        mult[rows, cols] = write.last_mult.to(current.device, current.dtype)
        add[rows, cols] = write.last_add.to(current.device, current.dtype)
    proxy[..., index] = current * mult + add


def check_sources(interventions: Sequence[Intervention], session: Session | None,
                  shape: tuple[int, int] | None = None) -> None:
    """Check, without torch or a model, that what the interventions name exists: the stored sets
    and their languages, the statistics a percentile/mean value needs, and (given the model's
    `shape` = (n_layers, d_ff)) that typed neurons fit. Commands call this before loading a
    model so a typo fails at once, not after minutes of work; `resolve` checks everything again.
    """
    for iv in interventions:
        if iv.source == "list":
            if shape is not None:
                n_layers, d_ff = shape
                for layer, index in iv.neurons:
                    if layer >= n_layers or index >= d_ff:
                        raise InterventionError(f"{iv.spec}: neuron {layer}.{index} is not in this model",
                                                f"this model has layers 0–{n_layers - 1}, neurons 0–{d_ff - 1}")
        elif session is None:
            raise InterventionError(f"neuron set {iv.source!r} lives in a session, and none is open",
                                    "pass --session, or give the neurons as a list like 3.17,5.200=zero")
        else:
            _check_stored_set(iv, session, shape)
        if iv.value in STAT_VALUES and iv.lang is not None:
            site, mode = ("g", "faithful") if iv.mode == "faithful" else (iv.site, "consistent")
            have = session.records("stats", iv.lang) if session is not None else []
            if not any(r.payload.get("site") == site and r.payload.get("mode") == mode for r in have):
                flags = " --mode faithful" if mode == "faithful" else f" --site {site}"
                name = session.name if session is not None else "S"
                raise StatsMissing(f"{iv.spec}: value {iv.value} needs {iv.lang}'s activation statistics "
                                   f"({mode}, site {site}), and the session has none",
                                   f"run `lsn-explorer stats --session {name} --langs {iv.lang}{flags}` first")


def _check_stored_set(iv: Intervention, session: Session, shape: tuple[int, int] | None) -> None:
    if iv.source.startswith("#"):
        record = next((r for r in session.records("neuron_set") if r.id == int(iv.source[1:])), None)
    else:
        record = session.latest("neuron_set", iv.source)
    if record is None:
        stored = sorted({r.name for r in session.records("neuron_set")})
        raise InterventionError(f"session {session.name!r} has no neuron set {iv.source!r}",
                                f"stored sets: {', '.join(stored) or 'none yet (identify neurons first)'}")
    data = record.payload.get("set", {})
    langs = list(data.get("neurons", {}))
    if iv.lang is not None and iv.lang not in langs:
        raise InterventionError(f"neuron set {iv.source!r} has no neurons for {iv.lang}",
                                f"its languages: {', '.join(langs) or 'none'}")
    if shape is not None and (data.get("n_layers"), data.get("d_ff")) != shape:
        raise InterventionError(f"neuron set {iv.source!r} was found on a {data.get('n_layers')}×{data.get('d_ff')} "
                                f"model, this one is {shape[0]}×{shape[1]}", "identify neurons on this model first")


def resolve(interventions: Sequence[Intervention], handle: ModelHandle, session: Session | None = None) -> EditPlan:
    """Look up neurons and values for each intervention and compile them for `handle`'s model.

    Raises `InterventionError` / `StatsMissing` with a hint when a set, language or statistic is
    missing, or an index does not fit the model.
    """
    edits = [_edit(iv, handle, session) for iv in interventions]
    return EditPlan(edits, handle.n_layers)


def _edit(iv: Intervention, handle: ModelHandle, session: Session | None) -> Edit:
    import torch

    from lsn_explorer.core.neurons import validate_pairs

    if iv.site not in handle.arch.sites:
        raise InterventionError(f"{iv.spec}: site {iv.site} does not exist in a {handle.arch.family} MLP",
                                "use site s")
    if iv.source == "list":
        pairs = validate_pairs(torch.tensor(iv.neurons, dtype=torch.long).reshape(-1, 2), handle.n_layers,
                               handle.d_ff, typed=True)
    else:
        pairs = _set_pairs(iv, _neuron_set(iv.source, handle, session))
    layer, index = pairs[:, 0].contiguous(), pairs[:, 1].contiguous()
    k = len(pairs)
    if iv.value == "scale":
        mult, add = torch.full((k,), float(iv.amount)), torch.zeros(k)
    elif iv.value == "const":
        mult, add = torch.zeros(k), torch.full((k,), float(iv.amount))
    elif iv.value == "zero":
        mult, add = torch.zeros(k), torch.zeros(k)
    else:
        mult, add = torch.zeros(k), _stat_values(iv, handle, session)[layer, index].float()
    return Edit(iv, layer, index, mult, add)


def _neuron_set(source: str, handle: ModelHandle, session: Session | None) -> NeuronSet:
    from lsn_explorer.core.identification import load_neuron_set
    from lsn_explorer.core.neurons import NeuronSet

    if session is None:
        raise InterventionError(f"neuron set {source!r} lives in a session, and none is open",
                                "pass --session, or give the neurons as a list like 3.17,5.200=zero")
    if source.startswith("#"):
        record = next((r for r in session.records("neuron_set") if r.id == int(source[1:])), None)
        if record is None:
            raise InterventionError(f"session {session.name!r} has no neuron set record {source}",
                                    "see `lsn-explorer session show NAME` for record ids")
        neuron_set = NeuronSet.from_json(record.payload["set"], source=f"neuron set {source}")
    else:
        neuron_set = load_neuron_set(session, source)
    if (neuron_set.n_layers, neuron_set.d_ff) != (handle.n_layers, handle.d_ff):
        raise InterventionError(
            f"neuron set {source!r} was found on a {neuron_set.n_layers}×{neuron_set.d_ff} model, "
            f"this one is {handle.n_layers}×{handle.d_ff}", "identify neurons on this model first")
    return neuron_set


def _set_pairs(iv: Intervention, neuron_set: NeuronSet) -> torch.Tensor:
    import torch

    langs = neuron_set.languages
    lang = iv.lang or (langs[0] if len(langs) == 1 else None)
    if lang is None:
        raise InterventionError(f"{iv.spec}: neuron set {iv.source!r} has several languages",
                                f"name one: {iv.source}:LANG=... with LANG in {', '.join(langs)}")
    if lang not in neuron_set.neurons:
        raise InterventionError(f"neuron set {iv.source!r} has no neurons for {lang}",
                                f"its languages: {', '.join(langs) or 'none'}")
    pairs = neuron_set.neurons[lang]
    if len(pairs) == 0:
        raise InterventionError(f"neuron set {iv.source!r} selects no neurons for {lang}",
                                "choose another language, or a larger rate when identifying")
    return pairs


def _stat_values(iv: Intervention, handle: ModelHandle, session: Session | None) -> torch.Tensor:
    import torch

    from lsn_explorer.core.stats_runs import StatsMissing, load_stats

    site, mode = ("g", "faithful") if iv.mode == "faithful" else (iv.site, "consistent")
    if session is None:
        raise StatsMissing(f"{iv.spec}: value {iv.value} needs {iv.lang}'s activation statistics",
                           "pass --session with statistics, or use zero / a constant")
    try:
        stats = load_stats(session, iv.lang or "", site=site, mode=mode)
    except StatsMissing as exc:
        flags = " --mode faithful" if mode == "faithful" else f" --site {site}"
        raise StatsMissing(f"{iv.spec}: value {iv.value} needs {exc.message.split('has no ')[-1]}",
                           f"run `lsn-explorer stats --session {session.name} --langs {iv.lang}{flags}` first") from None
    if stats.shape != (handle.n_layers, handle.d_ff):
        raise InterventionError(f"{iv.lang}'s statistics are for a {stats.shape[0]}×{stats.shape[1]} model",
                                "compute statistics with this model")
    return stats.values[iv.value]
