"""The latent-space measures of Tezuka & Inoue (SCIENCE.md §9), on plain state matrices.

Every function takes last-token states of one depth (rows = sentences, columns = model
dimensions) or of every depth ([sentences, depths, d]) and computes in float64; none knows about
models or sessions, so each can be checked against numpy / scikit-learn on small matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from lsn_explorer.errors import LsnError

THRESHOLDS = (0.90, 0.95, 0.99)  # cumulative explained variance for the dimensionality counts


def centroid_similarity(states: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Cosine between language centroids (mean state per language), per depth.

    Args:
        states: language → [sentences, depths, d].

    Returns:
        [depths, languages, languages], languages in the mapping's order.
    """
    centroids = torch.stack([s.double().mean(0) for s in states.values()], 1)  # [depths, langs, d]
    unit = centroids / centroids.norm(dim=-1, keepdim=True).clamp(min=1e-30)
    return unit @ unit.transpose(1, 2)


@dataclass(frozen=True)
class Projection:
    """A 2-D PCA of several languages' states at one depth, fitted on all of them together."""

    coords: dict[str, torch.Tensor]  # language → [sentences, 2]
    explained: tuple[float, float]  # share of the variance on each axis


def pca_2d(states: Mapping[str, torch.Tensor]) -> Projection:
    """Project every language's states ([sentences, d] each) onto the first two principal axes
    of all of them pooled (centred on the pooled mean).

    Each axis's sign is fixed so that its largest-magnitude loading is positive, which makes the
    picture the same from run to run (a principal axis is only defined up to sign).
    """
    pooled = torch.cat([s.double() for s in states.values()])
    if len(pooled) < 2:
        raise LsnError("PCA needs at least two sentences", "raise --lines")
    centred = pooled - pooled.mean(0)
    _, values, axes_t = torch.linalg.svd(centred, full_matrices=False)
    axes = axes_t[:2].T.clone()  # [d, ≤2]
    if axes.shape[1] < 2:  # one-dimensional data (d = 1): the second axis is flat
        axes = torch.cat([axes, torch.zeros_like(axes)], 1)
    signs = torch.sign(axes[axes.abs().argmax(0), torch.arange(2)])
    axes = axes * torch.where(signs == 0, 1.0, signs)
    variance = values.square()
    total = float(variance.sum()) or 1.0
    shares = [float(v) / total for v in variance[:2]] + [0.0] * (2 - min(2, len(variance)))
    projected = centred @ axes
    coords, start = {}, 0
    for lang, s in states.items():
        coords[lang] = projected[start:start + len(s)]
        start += len(s)
    return Projection(coords, (shares[0], shares[1]))


def components_for(states: torch.Tensor, thresholds: Sequence[float] = THRESHOLDS) -> list[int]:
    """How many singular values of the uncentred matrix [sentences, d] it takes for their squares'
    cumulative share to reach each threshold (the representation's effective dimensionality)."""
    values = torch.linalg.svdvals(states.double())
    energy = values.square()
    if float(energy.sum()) == 0:
        return [0 for _ in thresholds]
    cumulative = energy.cumsum(0) / energy.sum()
    # A share that reaches the threshold only up to rounding (e.g. 0.9 + 1e-16 vs 0.9) counts.
    return [min(int((cumulative < t - 1e-12).sum()) + 1, len(values)) for t in thresholds]


def mutual_knn(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """Mutual k-nearest-neighbour alignment of two paired state matrices (row i of `a` and of `b`
    come from the same sentence): the mean over sentences of |N_a(i) ∩ N_b(i)| / k, where N_x(i)
    are the k rows most cosine-similar to row i within x, row i itself excluded.

    Ties are broken towards the lower row index, so the score is well defined on duplicated rows.

    Raises:
        LsnError: the matrices are not paired, or k is not between 1 and sentences − 1.
    """
    if a.shape[0] != b.shape[0]:
        raise LsnError(f"mutual k-NN needs paired states: {a.shape[0]} vs {b.shape[0]} sentences",
                       "give line-aligned parallel text")
    mutual_knn_check(a.shape[0], k)
    return float((neighbours(a, k) & neighbours(b, k)).sum(1).double().mean() / k)


def tied_share(x: torch.Tensor, k: int) -> float:
    """Share of rows whose k nearest neighbours are not unique: the k-th and (k+1)-th most
    similar rows are exactly as similar (e.g. every sentence ends in the same token, so the states
    of the embedding layer are identical). Where it is high, `mutual_knn` reflects the tie-break."""
    mutual_knn_check(x.shape[0], k)
    if k == x.shape[0] - 1:
        return 0.0  # every other row is a neighbour: nothing to choose
    unit = x.double() / x.double().norm(dim=1, keepdim=True).clamp(min=1e-30)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-torch.inf)
    top = similarity.topk(k + 1, dim=1).values
    return float((top[:, k - 1] == top[:, k]).double().mean())


def mutual_knn_check(n: int, k: int) -> None:
    """k must leave room for the sentence itself: 1 ≤ k ≤ n − 1."""
    if not 1 <= k <= n - 1:
        raise LsnError(f"k = {k} neighbours needs more than {k} sentences; there are {n}",
                       f"lower --k (at most {max(n - 1, 0)}) or raise --lines")


def neighbours(x: torch.Tensor, k: int) -> torch.Tensor:
    """[n, n] boolean: entry (i, j) is set when j is one of row i's k nearest rows by cosine."""
    unit = x.double() / x.double().norm(dim=1, keepdim=True).clamp(min=1e-30)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-torch.inf)
    # A stable descending sort keeps equal similarities in index order: ties go to the lower index.
    order = torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :k]
    chosen = torch.zeros_like(similarity, dtype=torch.bool)
    chosen.scatter_(1, order, True)
    return chosen


@dataclass(frozen=True)
class PairSimilarity:
    """Mean cosine of parallel en–L2 pairs (same sentence) and of non-parallel ones (all i ≠ j),
    per depth; the gap is their difference."""

    parallel: torch.Tensor  # [depths]
    nonparallel: torch.Tensor  # [depths]

    @property
    def gap(self) -> torch.Tensor:
        return self.parallel - self.nonparallel


def pair_similarity(en: torch.Tensor, l2: torch.Tensor) -> PairSimilarity:
    """Parallel vs non-parallel cosine between line-aligned English and L2 states
    ([sentences, depths, d] each); every ordered pair i ≠ j counts once as non-parallel."""
    if en.shape != l2.shape:
        raise LsnError(f"parallel states differ in shape: {tuple(en.shape)} vs {tuple(l2.shape)}",
                       "give line-aligned parallel text")
    n = en.shape[0]
    if n < 2:
        raise LsnError("parallel vs non-parallel needs at least two sentences", "raise --lines")
    u = en.double() / en.double().norm(dim=-1, keepdim=True).clamp(min=1e-30)
    v = l2.double() / l2.double().norm(dim=-1, keepdim=True).clamp(min=1e-30)
    parallel = (u * v).sum(-1).mean(0)  # [depths]
    # Σ_{i,j} u_i·v_j = (Σ u)·(Σ v): the all-pairs mean without an n × n matrix per depth.
    everything = (u.sum(0) * v.sum(0)).sum(-1)
    nonparallel = (everything - parallel * n) / (n * (n - 1))
    return PairSimilarity(parallel, nonparallel)
