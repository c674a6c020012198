"""Identification methods from activation statistics: LAPE, Act Prob 90p and random baselines.

Each method takes per-language statistics stacked as [n_langs, n_layers, d_ff] and returns a
`NeuronSet`. SCIENCE.md §2–3 gives the algorithms; where the papers' code and text differ, the
consistent variant is the default and `variant="faithful"` reproduces the published code.
"""

from __future__ import annotations

from typing import Sequence

import torch

from lsn_explorer.core.neurons.neuron_set import NeuronSet

ACTPROB90P_NOTE = (
    "Act Prob 90p scores each neuron by the share of a language's tokens above that language's own "
    "P90. With global percentiles (consistent statistics) that share is ≈ 0.10 for every neuron by "
    "construction, so the ranking is close to arbitrary; with faithful statistics (P90 averaged "
    "over 4×512-token batches) it ranks neurons by how bursty they are across batches. This is a "
    "property of the method, not of lsn-explorer."
)


def lape(
    prob: torch.Tensor,
    langs: Sequence[str],
    *,
    top_rate: float = 0.01,
    filter_rate: float = 0.95,
    bar_ratio: float = 0.95,
    variant: str = "consistent",
) -> NeuronSet:
    """Language activation probability entropy (Tang et al. 2024).

    Args:
        prob: activation probabilities [n_langs, n_layers, d_ff].
        langs: language codes in the order of `prob`'s first axis.
        top_rate: share of all neurons kept (global over layers).
        filter_rate: τ = this quantile of all probabilities; neurons with no language above τ
            are excluded.
        bar_ratio: τ' = this quantile; a kept neuron is assigned to every language above τ'.
        variant: "consistent" (Tang: exact order statistics, exactly round(top_rate·N) neurons)
            or "faithful" (Mondal: interpolated torch.quantile thresholds, entropy ties kept).
    """
    n_langs, n_layers, d_ff = prob.shape
    p = prob.reshape(n_langs, -1).double().T  # [N, n_langs]
    total = p.sum(-1, keepdim=True)
    q = torch.where(total > 0, p / total.clamp(min=1e-300), torch.zeros_like(p))
    entropy = -(q * torch.where(q > 0, q.log(), torch.zeros_like(q))).sum(-1)
    flat = p.flatten()
    tau = _threshold(flat, filter_rate, variant)
    entropy[(p > tau).sum(-1) == 0] = float("inf")
    k = round(top_rate * n_layers * d_ff)
    if variant == "faithful":
        cut = entropy.kthvalue(max(k, 1)).values
        chosen = torch.nonzero(entropy <= cut).flatten()
    else:
        # Stable sort: among equal entropies the lower flat index wins, so the result is unique.
        chosen = torch.sort(entropy, stable=True).indices[:k]
    chosen = chosen[torch.isfinite(entropy[chosen])]
    bar = tau if bar_ratio == filter_rate else _threshold(flat, bar_ratio, variant)
    neurons, scores = {}, {}
    for j, lang in enumerate(langs):
        mine = chosen[p[chosen, j] > bar]
        neurons[lang] = torch.stack([mine // d_ff, mine % d_ff], -1)
        scores[lang] = entropy[mine.sort().values].float()
    params = {"top_rate": top_rate, "filter_rate": filter_rate, "bar_ratio": bar_ratio,
              "variant": variant, "languages": list(langs), "tau": float(tau), "bar": float(bar)}
    return NeuronSet("lape", params, n_layers, d_ff, neurons, scores)


def _threshold(values: torch.Tensor, rate: float, variant: str) -> torch.Tensor:
    """The `rate` quantile: exact order statistic (Tang's kthvalue) or interpolated (Mondal)."""
    if variant == "faithful":
        return torch.quantile(values.float(), rate).double()
    return values.kthvalue(max(1, round(len(values) * rate))).values


def actprob90p(act90: torch.Tensor, langs: Sequence[str], *, rate: float = 0.00125) -> NeuronSet:
    """Act Prob 90p (Mondal et al. 2025): per language the top round(rate·L·d_ff) neurons by the
    share of its tokens above its own P90, global over layers (573 for Llama-3.1-8B)."""
    n_langs, n_layers, d_ff = act90.shape
    k = max(1, round(rate * n_layers * d_ff))
    neurons, scores = {}, {}
    for j, lang in enumerate(langs):
        flat = act90[j].reshape(-1).double()
        top = torch.sort(flat, descending=True, stable=True).indices[:k].sort().values
        neurons[lang] = torch.stack([top // d_ff, top % d_ff], -1)
        scores[lang] = flat[top].float()
    return NeuronSet("actprob90p", {"rate": rate, "languages": list(langs), "note": ACTPROB90P_NOTE},
                     n_layers, d_ff, neurons, scores)
