"""The latent-space measures against independent computations: numpy for cosines and SVD,
scikit-learn's PCA and NearestNeighbors, and brute-force loops for k-NN with ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsn_explorer.core.latent.measures import (
    centroid_similarity,
    components_for,
    mutual_knn,
    pair_similarity,
    pca_2d,
)
from lsn_explorer.errors import LsnError

sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
sklearn_neighbors = pytest.importorskip("sklearn.neighbors")


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_centroid_similarity_matches_numpy(seed):
    rng = _rng(seed)
    states = {lang: rng.normal(size=(n, 4, 6)) + shift for lang, n, shift in (("en", 7, 0.0), ("ja", 5, 1.0), ("zh", 9, -0.5))}
    got = centroid_similarity({lang: torch.tensor(s) for lang, s in states.items()})
    langs = list(states)
    assert got.shape == (4, 3, 3)
    for depth in range(4):
        for i, a in enumerate(langs):
            for j, b in enumerate(langs):
                ref = _cos(states[a][:, depth].mean(0), states[b][:, depth].mean(0))
                assert got[depth, i, j].item() == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_pca_matches_scikit_learn_up_to_axis_sign(seed):
    rng = _rng(seed)
    # Anisotropic data so the first two axes are well separated (no near-equal eigenvalues).
    scale = np.array([5.0, 2.0, 1.0, 0.5, 0.3, 0.2])
    states = {"en": rng.normal(size=(20, 6)) * scale, "hi": rng.normal(size=(15, 6)) * scale + 1.0}
    got = pca_2d({lang: torch.tensor(s) for lang, s in states.items()})
    pooled = np.concatenate(list(states.values()))
    reference = sklearn_decomposition.PCA(n_components=2, svd_solver="full").fit(pooled)
    ref_coords = reference.transform(pooled)
    ours = np.concatenate([got.coords["en"].numpy(), got.coords["hi"].numpy()])
    for axis in range(2):
        sign = np.sign(ours[:, axis] @ ref_coords[:, axis])
        np.testing.assert_allclose(ours[:, axis], sign * ref_coords[:, axis], atol=1e-9)
    np.testing.assert_allclose(got.explained, reference.explained_variance_ratio_, atol=1e-12)
    assert got.coords["en"].shape == (20, 2) and got.coords["hi"].shape == (15, 2)


def test_pca_axis_signs_are_fixed_by_the_largest_loading():
    rng = _rng(4)
    states = {"en": torch.tensor(rng.normal(size=(30, 5)) * np.array([3.0, 1.0, 1.0, 0.5, 0.1]))}
    first = pca_2d(states).coords["en"]
    flipped = pca_2d({"en": -states["en"]}).coords["en"]
    # Negating the data negates the states' projections on the same fixed-sign axes.
    torch.testing.assert_close(flipped, -first, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape", [(12, 8), (5, 20), (40, 3)])
def test_components_match_numpy_svd(shape):
    rng = _rng(shape[0])
    matrix = rng.normal(size=shape) @ np.diag(np.linspace(3, 0.1, shape[1])) + 0.5
    values = np.linalg.svd(matrix, compute_uv=False)
    share = np.cumsum(values**2) / np.sum(values**2)
    for threshold in (0.9, 0.95, 0.99):
        ref = next(i + 1 for i, s in enumerate(share) if s >= threshold)
        assert components_for(torch.tensor(matrix), [threshold]) == [ref]


def test_components_on_exact_ranks_and_the_threshold_itself():
    # Rank 1: one component carries everything; exactly 90 % on the first of two counts as reached.
    assert components_for(torch.ones(6, 4), [0.9, 0.99]) == [1, 1]
    matrix = torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64))  # shares 0.9 and 1.0
    assert components_for(matrix, [0.9, 0.95]) == [1, 2]
    assert components_for(torch.zeros(3, 3), [0.9]) == [0]


def _knn_sets_brute(x: np.ndarray, k: int) -> list[set[int]]:
    """For each row, its k most cosine-similar other rows; equal similarities go to the lower index."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sets = []
    for i in range(len(x)):
        others = [(-(unit[i] @ unit[j]), j) for j in range(len(x)) if j != i]
        sets.append({j for _, j in sorted(others)[:k]})
    return sets


def _mutual_knn_brute(a: np.ndarray, b: np.ndarray, k: int) -> float:
    na, nb = _knn_sets_brute(a, k), _knn_sets_brute(b, k)
    return float(np.mean([len(na[i] & nb[i]) / k for i in range(len(a))]))


@pytest.mark.parametrize("k", [1, 3, 10])
def test_mutual_knn_matches_scikit_learn_neighbours(k):
    rng = _rng(k)
    a = rng.normal(size=(25, 6))
    b = a + 0.7 * rng.normal(size=(25, 6))  # related but not identical spaces
    sets = []
    for x in (a, b):
        search = sklearn_neighbors.NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x)
        _, index = search.kneighbors(x)
        sets.append([set(row[row != i][:k].tolist()) for i, row in enumerate(index)])
    ref = np.mean([len(sets[0][i] & sets[1][i]) / k for i in range(len(a))])
    assert mutual_knn(torch.tensor(a), torch.tensor(b), k) == pytest.approx(ref, abs=1e-12)
    assert mutual_knn(torch.tensor(a), torch.tensor(b), k) == pytest.approx(_mutual_knn_brute(a, b, k), abs=1e-12)


def test_mutual_knn_with_ties_breaks_them_towards_the_lower_index():
    # Duplicated rows make several neighbours equally close; the score is still well defined.
    base = _rng(7).normal(size=(4, 3))
    a = np.concatenate([base, base, base[:2]])  # 10 rows, many exact ties
    b = np.concatenate([base[::-1], base, base[2:]])
    for k in (1, 2, 5, 9):
        assert mutual_knn(torch.tensor(a), torch.tensor(b), k) == pytest.approx(_mutual_knn_brute(a, b, k), abs=1e-12)
    assert mutual_knn(torch.tensor(a), torch.tensor(a), 3) == 1.0  # a space agrees with itself


def test_mutual_knn_k_edge_cases():
    a = torch.tensor(_rng(8).normal(size=(6, 4)))
    assert mutual_knn(a, torch.tensor(_rng(9).normal(size=(6, 4))), 5) == 1.0  # k = n − 1: everyone else
    for k in (6, 7, 0):
        with pytest.raises(LsnError, match=f"k = {k} neighbours") as info:
            mutual_knn(a, a, k)
        assert "--k" in info.value.hint
    with pytest.raises(LsnError, match="paired"):
        mutual_knn(a, a[:5], 2)


@pytest.mark.parametrize("seed", [0, 5])
def test_pair_similarity_matches_loops(seed):
    rng = _rng(seed)
    en, l2 = rng.normal(size=(8, 3, 5)), rng.normal(size=(8, 3, 5))
    l2[:, :, 0] += en[:, :, 0]  # some alignment, so parallel pairs are more similar
    got = pair_similarity(torch.tensor(en), torch.tensor(l2))
    for depth in range(3):
        parallel = np.mean([_cos(en[i, depth], l2[i, depth]) for i in range(8)])
        nonparallel = np.mean([_cos(en[i, depth], l2[j, depth]) for i in range(8) for j in range(8) if i != j])
        assert got.parallel[depth].item() == pytest.approx(parallel, abs=1e-12)
        assert got.nonparallel[depth].item() == pytest.approx(nonparallel, abs=1e-12)
        assert got.gap[depth].item() == pytest.approx(parallel - nonparallel, abs=1e-12)
    with pytest.raises(LsnError, match="at least two"):
        pair_similarity(torch.tensor(en[:1]), torch.tensor(l2[:1]))
    with pytest.raises(LsnError, match="differ in shape"):
        pair_similarity(torch.tensor(en), torch.tensor(l2[:7]))


def test_tied_share_counts_rows_whose_neighbours_are_ambiguous():
    from lsn_explorer.core.latent.measures import tied_share

    distinct = torch.tensor(_rng(10).normal(size=(8, 4)))
    assert tied_share(distinct, 3) == 0.0
    same = torch.ones(6, 4, dtype=torch.float64)  # identical rows: every neighbour set is a tie-break
    assert tied_share(same, 2) == 1.0
    assert tied_share(same, 5) == 0.0  # k = n − 1: everyone else is a neighbour, nothing to choose
    # Rows 0 and 1 have two equally close candidates at their k-th place; rows 2–5 do not.
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.2], [-1.0, -0.2]], dtype=torch.float64)
    brute = []
    for i in range(6):
        sims = sorted((float(x[i] @ x[j] / (x[i].norm() * x[j].norm())) for j in range(6) if j != i), reverse=True)
        brute.append(sims[1] == sims[2])
    assert tied_share(x, 2) == pytest.approx(sum(brute) / 6)
