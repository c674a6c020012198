"""Transfer neurons (Tezuka & Inoue 2025, SCIENCE.md §8): Type-1 move a language's states into
the shared (English-centric) space in early/middle layers, Type-2 move them back out late.

From a parallel en–L2 corpus, at the last token of each sentence:
- h_l: output of decoder layer l (raw layer output, not the post-final-norm hidden state);
- r: the residual right before layer l's MLP (h_{l-1} + attention output);
- a: activations at site a (down-projection input); v_i: column i of down_proj.weight.
Centroid c_l: Type-1 = mean over pairs of (h_en + h_L2) / 2; Type-2 = mean of h_L2.
Score of neuron i in layer l = mean over L2 sentences of cos(r + a_i v_i, c_l) − cos(r, c_l),
computed in closed form for all neurons of a layer at once — never a d_ff × d_model matrix per
sentence (`score_layer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

import torch

from lsn_explorer.core.model.architectures import mlp_module
from lsn_explorer.core.neurons.methods import format_layers
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.core.progress import Cancel, Progress, stop_if_cancelled
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:

    from lsn_explorer.core.model.loading import ModelHandle

TransferType = Literal["type1", "type2"]
# Candidate layers as fractions of depth: Tezuka & Inoue use layers 1–20 (Type-1) and 21–32
# (Type-2) of 32-layer models.
TYPE1_DEPTH, TYPE2_DEPTH = 20 / 32, 12 / 32


def candidate_layers(kind: TransferType, n_layers: int, fraction: float | None = None,
                     layers: Sequence[int] | None = None) -> list[int]:
    """Type-1: the first `fraction` of layers; Type-2: the last `fraction`; or exactly `layers`."""
    if layers is not None:
        chosen = sorted(set(int(layer) for layer in layers))
        if not chosen or chosen[0] < 0 or chosen[-1] >= n_layers:
            raise LsnError(f"candidate layers {format_layers(chosen) or 'none'} are outside the model's "
                           f"layers 0–{n_layers - 1}", f"choose layers between 0 and {n_layers - 1}, e.g. 1-{n_layers - 1}")
        if fraction is not None:
            raise LsnError("both a depth share and explicit layers were given", "give one of them")
        return chosen
    share = fraction if fraction is not None else (TYPE1_DEPTH if kind == "type1" else TYPE2_DEPTH)
    if not 0 < share <= 1:
        raise LsnError(f"depth {share} is not a share of the layers", "give a number in (0, 1], e.g. 0.625")
    count = max(1, min(n_layers, round(share * n_layers)))
    return list(range(count)) if kind == "type1" else list(range(n_layers - count, n_layers))


@dataclass
class LastTokenStates:
    """Per sentence, at the last token: h [S, L, d], r [S, L, d], a [S, L, d_ff] (float32, CPU)."""

    h: torch.Tensor
    r: torch.Tensor
    a: torch.Tensor


def last_token_states(handle: ModelHandle, sentences: Sequence[str], *, batch_size: int = 64,
                      progress: Progress | None = None, label: str = "",
                      cancel: Cancel | None = None) -> LastTokenStates:
    """Run the model over `sentences` (left-padded batches) and keep last-token states.

    `progress(label, done, total)` after each batch; a set `cancel` stops between batches (`Cancelled`).
    """
    from lsn_explorer.core.model.backend import read_last_token

    if not sentences:
        raise LsnError("no sentences to score", "give a parallel corpus with text")
    hs, rs, as_ = [], [], []
    for start in range(0, len(sentences), batch_size):
        stop_if_cancelled(cancel, "transfer-neuron scoring")
        chunk = list(sentences[start:start + batch_size])
        inputs = handle.tokenizer(chunk, return_tensors="pt", padding=True).to(handle.device)
        h, r, a = read_last_token(handle, dict(inputs))
        hs.append(h)
        rs.append(r)
        as_.append(a)
        if progress is not None:
            progress(label, min(start + batch_size, len(sentences)), len(sentences))
    return LastTokenStates(torch.cat(hs), torch.cat(rs), torch.cat(as_))


def down_weight(handle: ModelHandle, layer: int) -> torch.Tensor:
    """down_proj.weight of a layer as float32 [d_model, d_ff] (dequantised for 4-bit models)."""
    module = getattr(mlp_module(handle.model, handle.arch, layer), handle.arch.down)
    weight = module.weight
    if hasattr(weight, "quant_state"):
        import bitsandbytes.functional as bnbf

        data, state = weight.data, weight.quant_state
        if getattr(state, "packing_format_for_cpu", False):
            # On CPUs with AVX512-BF16 the first forward repacks the weight for bitsandbytes' CPU
            # kernel; dequantising the repacked bytes as if they were plain NF4 gives wrong values.
            data, state = bnbf._convert_weight_packed_for_cpu_inverse(data, state)
        weight = bnbf.dequantize_4bit(data, state)
    weight = weight.float()
    # GPT-2's Conv1D stores the transpose of a Linear weight: [d_ff, d_model].
    return weight.T if weight.shape[0] == handle.d_ff and weight.shape[1] != handle.d_ff else weight


def score_layer(r: torch.Tensor, a: torch.Tensor, v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Mean over sentences of cos(r + a_i v_i, c) − cos(r, c), for every neuron i of a layer.

    Args:
        r: residual before the MLP [S, d]; a: activations [S, F]; v: down_proj.weight [d, F];
        c: centroid [d].

    Closed form (float64): with hc = r·c, vc = v_i·c, hv = r·v_i,
    cos(r + a v_i, c) = (hc + a·vc) / (‖c‖ √(‖r‖² + 2a·hv + a²‖v_i‖²)).
    """
    r, a, v, c = r.double(), a.double(), v.double(), c.double()
    hc = r @ c  # [S]
    vc = c @ v  # [F]
    hv = r @ v  # [S, F]
    rn2 = (r * r).sum(-1, keepdim=True)  # [S, 1]
    vn2 = (v * v).sum(0)  # [F]
    cn = c.norm()
    moved = (hc.unsqueeze(-1) + a * vc) / (cn * torch.sqrt((rn2 + 2 * a * hv + a * a * vn2).clamp(min=1e-30)))
    base = hc / (cn * rn2.squeeze(-1).sqrt().clamp(min=1e-30))
    return (moved - base.unsqueeze(-1)).mean(0)


def split_indices(n: int, test_share: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/test split of n sentence indices."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = int(round(n * test_share))
    return sorted(order[n_test:]), sorted(order[:n_test])


def transfer_neurons(
    handle: ModelHandle,
    kind: TransferType,
    pairs: dict[str, tuple[list[str], list[str]]],
    *,
    top_n: int = 1000,
    depth: float | None = None,
    layers: Sequence[int] | None = None,
    test_share: float = 0.2,
    seed: int = 0,
    batch_size: int = 64,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> NeuronSet:
    """Type-1 or Type-2 neurons for each L2 in `pairs` (L2 → (English lines, L2 lines), aligned).

    The top `top_n` neurons by score over the candidate layers (global, not per layer) are kept;
    scores use the training split of the sentences, and the split is recorded in the params.
    Candidate layers are `layers` when given, else the `depth` share (SCIENCE.md §8).
    `progress(lang, done, total)` counts sentences run through the model ("en" for the English
    side); a set `cancel` stops between batches with `Cancelled`.
    """
    if top_n < 1:
        raise LsnError(f"top_n {top_n} keeps no neuron", "give a positive count, e.g. --top-n 1000")
    layers = candidate_layers(kind, handle.n_layers, depth, layers)
    top_n = min(top_n, len(layers) * handle.d_ff)
    weights = {layer: down_weight(handle, layer) for layer in layers}
    neurons, scores, splits = {}, {}, {}
    english: dict[tuple[str, ...], LastTokenStates] = {}  # one English pass serves every L2 with the same lines
    for lang, (en_lines, l2_lines) in pairs.items():
        if len(en_lines) != len(l2_lines):
            raise LsnError(f"{lang}: {len(en_lines)} English lines but {len(l2_lines)} {lang} lines",
                           "parallel files must be line-aligned")
        train, test = split_indices(len(l2_lines), test_share, seed)
        l2 = last_token_states(handle, [l2_lines[i] for i in train], batch_size=batch_size, progress=progress,
                               label=lang, cancel=cancel)
        if kind == "type1":
            en_train = tuple(en_lines[i] for i in train)
            if en_train not in english:
                english[en_train] = last_token_states(handle, en_train, batch_size=batch_size, progress=progress,
                                                      label="en", cancel=cancel)
            en = english[en_train]
            centroids = ((en.h + l2.h) / 2).mean(0)  # [L, d]
        else:
            centroids = l2.h.mean(0)
        per_layer = torch.stack([score_layer(l2.r[:, layer], l2.a[:, layer], weights[layer], centroids[layer])
                                 for layer in layers])  # [len(layers), d_ff]
        flat = per_layer.flatten()
        top = torch.sort(flat, descending=True, stable=True).indices[:top_n].sort().values
        layer_ids = torch.tensor(layers)[top // handle.d_ff]
        neurons[lang] = torch.stack([layer_ids, top % handle.d_ff], -1)
        scores[lang] = flat[top].float()
        splits[lang] = {"train": len(train), "test": test}
    params = {"top_n": top_n, "layers": layers, "depth": depth, "test_share": test_share, "seed": seed,
              "split": splits, "centroid": "mean (h_en + h_L2)/2" if kind == "type1" else "mean h_L2"}
    return NeuronSet(kind, params, handle.n_layers, handle.d_ff, neurons, scores)
