"""An independent reference for interventions: plain PyTorch hooks, one intervention at a time.

Written straight from SCIENCE.md §4 and the position rules in core/interventions.py, without the
engine's composition or nnsight: each intervention is a hook that overwrites (or scales) its
neurons at the positions it covers, applied in order. The first call of a hook in a generation is
the prompt pass; later calls are decoding steps of one position each.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lsn_explorer.core.model.architectures import resolve


def random_constant_spec(handle, n: int, value: float, seed: int) -> str:
    """A hand-typed intervention spec: n random neurons (distinct indices) set to `value`."""
    g = torch.Generator().manual_seed(seed)
    pairs = [(int(torch.randint(0, handle.n_layers, (1,), generator=g)), int(i))
             for i in torch.randperm(handle.d_ff, generator=g)[:n]]
    return ",".join(f"{l}.{i}" for l, i in pairs) + f"={value:g}"


@dataclass
class RefIntervention:
    pairs: torch.Tensor  # [k, 2] (layer, index)
    values: torch.Tensor | None  # [k] written values (None for a scale)
    scale: float | None
    site: str  # s | a
    positions: str  # all | prompt | generated | last


def _edit(x: torch.Tensor, iv: RefIntervention, layer: int, phase: str, last: torch.Tensor | None) -> torch.Tensor:
    keep = iv.pairs[:, 0] == layer
    if not keep.any():
        return x
    idx = iv.pairs[keep, 1]
    x = x.clone()
    if phase == "prompt" and iv.positions in ("all", "prompt") or phase == "decode" and iv.positions in ("all", "generated"):
        rows = slice(None), slice(None)
    elif phase == "prompt" and iv.positions == "last":
        rows = torch.arange(x.shape[0]), (last if last is not None else torch.full((x.shape[0],), x.shape[1] - 1))
    else:
        return x
    for j, neuron in enumerate(idx.tolist()):  # deliberately one neuron at a time
        if iv.scale is not None:
            x[rows[0], rows[1], neuron] = x[rows[0], rows[1], neuron] * iv.scale
        else:
            x[rows[0], rows[1], neuron] = iv.values[keep][j].to(x.dtype)
    return x


class HookedInterventions:
    """Context manager registering reference hooks on `model` for a list of RefInterventions."""

    def __init__(self, model, arch, interventions: list[RefIntervention], last: torch.Tensor | None = None,
                 generating: bool = False, row: int | None = None):
        self.model, self.arch, self.ivs, self.last, self.generating = model, arch, interventions, last, generating
        self.row = row  # edit only this batch row (a batched run where the other rows are baselines)
        self.calls: dict[int, int] = {}
        self.handles = []

    def _phase(self, layer: int) -> str:
        n = self.calls.get(layer, 0)
        self.calls[layer] = n + 1
        return "prompt" if n == 0 or not self.generating else "decode"

    def _rows(self, x, iv, layer, phase):
        if self.row is None:
            return _edit(x, iv, layer, phase, self.last)
        x = x.clone()
        x[self.row:self.row + 1] = _edit(x[self.row:self.row + 1], iv, layer, phase, None)
        return x

    def __enter__(self):
        for layer, block in enumerate(resolve(self.model, self.arch.layers)):
            mlp = getattr(block, self.arch.mlp)
            s_ivs = [iv for iv in self.ivs if iv.site == "s"]
            a_ivs = [iv for iv in self.ivs if iv.site == "a"]
            phases: dict[int, str] = {}

            def on_act(_m, _i, out, layer=layer, ivs=s_ivs, phases=phases):
                phases[layer] = self._phase(layer)
                for iv in ivs:
                    out = self._rows(out, iv, layer, phases[layer])
                return out

            def on_down(_m, args, layer=layer, ivs=a_ivs, phases=phases):
                x = args[0]
                for iv in ivs:
                    x = self._rows(x, iv, layer, phases[layer])
                return (x,) + tuple(args[1:])

            self.handles.append(getattr(mlp, self.arch.act).register_forward_hook(on_act))
            self.handles.append(getattr(mlp, self.arch.down).register_forward_pre_hook(on_down))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
