"""Interventions compiled for one model and written into activations (SCIENCE.md §4).

An `EditPlan` holds, per phase (the prompt pass, decoding steps) and layer, one `LayerWrite` per
site: an index tensor and a (multiplier, addend) per neuron, so a layer gets one indexed write
however many interventions are active. `apply_write` performs it on whatever tensor-like object
the model backend hands over (an nnsight proxy in `core/model/backend.py`); this module never
touches nnsight itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsn_explorer.core.interventions.spec import Intervention
from lsn_explorer.core.vocab import WRITE_SITES, Phase, Site

if TYPE_CHECKING:
    import torch


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

    site: Site
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
        for site in WRITE_SITES:
            covered = [(e, *_covers(e.intervention.positions, phase)) for e in edits if e.intervention.site == site]
            masked = [(e, full, last, e.layer == layer) for e, full, last in covered if full or last]
            active = [(e, full, last, mask) for e, full, last, mask in masked if bool(mask.any())]
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
    if write.last_mult is not None and write.last_add is not None:
        rows = torch.arange(current.shape[0], device=current.device)
        cols = (torch.full_like(rows, current.shape[1] - 1) if last_position is None
                else last_position.to(current.device))
        mult, add = mult.clone(), add.clone()
        mult[rows, cols] = write.last_mult.to(current.device, current.dtype)
        add[rows, cols] = write.last_add.to(current.device, current.dtype)
    proxy[..., index] = current * mult + add
