"""Specificity and overlap of neuron sets (SCIENCE.md §9).

- η² (correlation ratio) of each neuron's activations against a binary label (target language vs
  the rest), with the one-way ANOVA p-value, computed from per-language summary statistics
  (token count, mean, mean square) — no raw activations needed.
- Jaccard |A ∩ B| / |A ∪ B| between the (layer, index) sets of languages or of methods.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from lsn_explorer.core.neurons.neuron_set import NeuronSet


def eta_squared(counts: Sequence[int], means: torch.Tensor, sqmeans: torch.Tensor, target: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """η² and ANOVA p of target language vs the rest, per neuron.

    Args:
        counts: tokens per language [n_langs].
        means, sqmeans: per-language mean and mean square [n_langs, ...] (any neuron shape).
        target: index of the target language.

    Returns:
        (eta2, p) shaped like one language's `means`.
    """
    n = torch.tensor(counts, dtype=torch.float64).view(-1, *([1] * (means.dim() - 1)))
    mu, m2 = means.double(), sqmeans.double()
    n_a, mu_a = n[target], mu[target]
    rest = [i for i in range(len(counts)) if i != target]
    n_b = n[rest].sum(0)
    mu_b = (n[rest] * mu[rest]).sum(0) / n_b
    total_n = n_a + n_b
    grand = (n_a * mu_a + n_b * mu_b) / total_n
    ss_total = (n * m2).sum(0) - total_n * grand**2
    ss_between = n_a * (mu_a - grand) ** 2 + n_b * (mu_b - grand) ** 2
    ss_within = (ss_total - ss_between).clamp(min=0)
    eta2 = torch.where(ss_total > 0, ss_between / ss_total, torch.zeros_like(ss_total)).clamp(0, 1)
    df_within = float(total_n.flatten()[0]) - 2
    f_stat = ss_between / (ss_within / df_within).clamp(min=1e-300)
    p = f_survival(f_stat.numpy(), 1.0, df_within)
    return eta2.float(), torch.from_numpy(p).float()


def f_survival(f: np.ndarray, d1: float, d2: float) -> np.ndarray:
    """P(F > f) for the F(d1, d2) distribution: I_x(d2/2, d1/2) with x = d2 / (d2 + d1 f)."""
    f = np.asarray(f, dtype=np.float64)
    x = d2 / (d2 + d1 * np.clip(f, 0, None))
    # otypes given so a language with no neurons (empty input) yields an empty result
    return np.vectorize(lambda xi: _betainc(d2 / 2, d1 / 2, xi), otypes=[np.float64])(x)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    value = d
    for m in range(1, 10000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            value *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * value / a


def specificity_summary(eta2: torch.Tensor, p: torch.Tensor) -> dict[str, float]:
    """Mean η² and the shares with p < 0.05 and η² ≥ 0.1 / ≥ 0.25 (over the given neurons)."""
    if eta2.numel() == 0:
        return {"mean_eta2": float("nan"), "share_p05_eta01": float("nan"), "share_p05_eta025": float("nan")}
    significant = p < 0.05
    return {
        "mean_eta2": float(eta2.mean()),
        "share_p05_eta01": float((significant & (eta2 >= 0.1)).float().mean()),
        "share_p05_eta025": float((significant & (eta2 >= 0.25)).float().mean()),
    }


def jaccard(a: set, b: set) -> float:
    union = a | b
    return len(a & b) / len(union) if union else float("nan")


def jaccard_matrix(sets: dict[str, set]) -> tuple[list[str], list[list[float]]]:
    """Pairwise Jaccard indices between named sets, in the order given."""
    names = list(sets)
    return names, [[jaccard(sets[i], sets[j]) for j in names] for i in names]


def language_sets(neuron_set: NeuronSet) -> dict[str, set]:
    return {lang: neuron_set.as_set(lang) for lang in neuron_set.languages}
