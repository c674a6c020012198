"""Random baselines: neurons drawn to match a reference set, the control every result is compared with."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.errors import LsnError


def random_baseline(reference: NeuronSet, *, seed: int = 0, layers: Sequence[int] | None = None) -> NeuronSet:
    """Per language and layer: as many neurons as `reference` has there, uniform among that
    layer's other neurons (never one of the reference's neurons of that language); seeded.

    Matching per (language, layer), not just per language, is the baseline the papers compare
    against (Tezuka & Inoue: "same count, from the same layers"; SCIENCE.md §8). `layers`, when
    given, is the reference's candidate range; a reference neuron outside it is an error.
    """
    generator = torch.Generator().manual_seed(seed)
    d_ff = reference.d_ff
    allowed = set(int(layer) for layer in layers) if layers is not None else None
    neurons = {}
    for lang in sorted(reference.neurons):  # sorted: the draw does not depend on insertion order
        pairs = reference.neurons[lang]
        drawn = []
        for layer, count in enumerate(reference.per_layer(lang)):
            if count == 0:
                continue
            if allowed is not None and layer not in allowed:
                raise LsnError(f"{lang}: the reference has neurons in layer {layer}, outside the layers given",
                               "leave the layers out, or include every layer of the reference")
            free = torch.ones(d_ff, dtype=torch.bool)
            free[pairs[pairs[:, 0] == layer, 1]] = False
            pool = free.nonzero().flatten()
            if len(pool) < count:
                raise LsnError(f"{lang}: layer {layer} has only {len(pool)} neurons outside the set, "
                               f"{count} needed", "use a smaller reference set")
            pick = pool[torch.randperm(len(pool), generator=generator)[:count]].sort().values
            drawn.append(torch.stack([torch.full_like(pick, layer), pick], -1))
        neurons[lang] = torch.cat(drawn) if drawn else pairs.clone()
    ordered = {lang: neurons[lang] for lang in reference.neurons}
    params: dict[str, Any] = {"seed": seed, "reference": reference.method, "matched": "per language and layer",
                              "layers": sorted(allowed) if allowed is not None else None}
    return NeuronSet("random", params, reference.n_layers, d_ff, ordered)
