"""Resolving interventions against a session and a model: which neurons, which values.

`check_sources` checks, torch-free and before any model work, that what a spec names exists;
`resolve` looks up the neuron set (or the typed list) and the language's statistics and compiles
everything into an `EditPlan` for one model.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Mapping, Sequence

from lsn_explorer.core.interventions.apply import Edit, EditPlan
from lsn_explorer.core.interventions.spec import Intervention, InterventionError
from lsn_explorer.core.vocab import STAT_VALUES
from lsn_explorer.errors import StatsMissing

if TYPE_CHECKING:
    import torch

    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.core.neurons.neuron_set import NeuronSet
    from lsn_explorer.session.store import Session


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
    if iv.lang is not None and not data["neurons"][iv.lang]:
        raise InterventionError(f"neuron set {iv.source!r} selects no neurons for {iv.lang}",
                                "choose another language, or a larger rate when identifying")
    if shape is not None and (data.get("n_layers"), data.get("d_ff")) != shape:
        raise InterventionError(f"neuron set {iv.source!r} was found on a {data.get('n_layers')}×{data.get('d_ff')} "
                                f"model, this one is {shape[0]}×{shape[1]}", "identify neurons on this model first")


def pin_set(name: str, session: Session | None) -> str:
    """`lape` → `#12`, the newest record of that name (a `#id` is checked and kept).

    Work that is stored and may be resumed or recomputed later (an evaluation's rows, cached
    latent states) names its sets this way, so a set identified again under the same name does
    not change what it meant.
    """
    if session is None:
        raise InterventionError(f"neuron set {name!r} lives in a session, and none is open", "pass --session")
    sets = session.records("neuron_set")
    if name.startswith("#"):
        if not any(r.id == int(name[1:]) for r in sets):
            raise InterventionError(f"session {session.name!r} has no neuron set record {name}",
                                    "see `lsn-explorer session show` for record ids")
        return name
    named = [r for r in sets if r.name == name]
    if not named:
        stored = sorted({r.name for r in sets})
        raise InterventionError(f"session {session.name!r} has no neuron set {name!r}",
                                f"stored sets: {', '.join(stored) or 'none yet (run `lsn-explorer identify` first)'}")
    return f"#{named[-1].id}"


def pin_spec(spec: str, session: Session | None) -> str:
    """An intervention spec with its stored set (if any) pinned to a record id (see `pin_set`)."""
    left, _, right = spec.partition("=")
    source, colon, lang = left.partition(":")
    if re.match(r"^\d+\.\d+", source) or source.startswith("#"):
        return spec
    return f"{pin_set(source, session)}{colon}{lang}={right}"


def resolve(interventions: Sequence[Intervention], handle: ModelHandle, session: Session | None = None,
            sets: Mapping[str, NeuronSet] | None = None) -> EditPlan:
    """Look up neurons and values for each intervention and compile them for `handle`'s model.

    `sets` are neuron sets held in memory, found by name before the session's (an evaluation's
    random baselines, drawn again from their seed rather than stored).

    Raises `InterventionError` / `StatsMissing` with a hint when a set, language or statistic is
    missing, or an index does not fit the model.
    """
    edits = [_edit(iv, handle, session, sets or {}) for iv in interventions]
    return EditPlan(edits, handle.n_layers)


def _edit(iv: Intervention, handle: ModelHandle, session: Session | None, sets: Mapping[str, NeuronSet]) -> Edit:
    import torch

    from lsn_explorer.core.neurons.neuron_set import validate_pairs

    if iv.site not in handle.arch.sites:
        raise InterventionError(f"{iv.spec}: site {iv.site} does not exist in a {handle.arch.family} MLP",
                                "use site s")
    if iv.source == "list":
        pairs = validate_pairs(torch.tensor(iv.neurons, dtype=torch.long).reshape(-1, 2), handle.n_layers,
                               handle.d_ff, typed=True)
    else:
        held = sets.get(iv.source)
        pairs = _set_pairs(iv, held if held is not None else stored_set(iv.source, handle, session))
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


def stored_set(source: str, handle: ModelHandle, session: Session | None) -> NeuronSet:
    """The neuron set `source` (a name or `#record id`) of the session, checked against the model."""
    from lsn_explorer.core.neurons.neuron_set import NeuronSet
    from lsn_explorer.core.neurons.runs import load_neuron_set

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

    from lsn_explorer.core.stats.runs import StatsMissing, load_stats

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
