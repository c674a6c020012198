"""η² and ANOVA p from summary statistics against scipy on raw samples; Jaccard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsn_explorer.core.neurons.specificity import eta_squared, f_survival, jaccard, jaccard_matrix

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("sizes", [(30, 40, 50), (500, 20, 300, 1000), (5000, 6000)])
def test_eta_squared_and_p_match_scipy(sizes):
    rng = np.random.default_rng(len(sizes))
    groups = [rng.normal(0.2 * i, 1.0 + 0.1 * i, size=(n, 3)) for i, n in enumerate(sizes)]
    counts = [len(g) for g in groups]
    means = torch.tensor(np.stack([g.mean(0) for g in groups]))
    sqmeans = torch.tensor(np.stack([(g**2).mean(0) for g in groups]))
    for target in range(len(groups)):
        eta2, p = eta_squared(counts, means, sqmeans, target)
        a = groups[target]
        b = np.concatenate([g for i, g in enumerate(groups) if i != target])
        for neuron in range(3):
            f_stat, p_ref = scipy_stats.f_oneway(a[:, neuron], b[:, neuron])
            everything = np.concatenate([a[:, neuron], b[:, neuron]])
            grand = everything.mean()
            ss_between = len(a) * (a[:, neuron].mean() - grand) ** 2 + len(b) * (b[:, neuron].mean() - grand) ** 2
            eta_ref = ss_between / ((everything - everything.mean()) ** 2).sum()
            assert float(eta2[neuron]) == pytest.approx(eta_ref, rel=1e-4, abs=1e-7)
            assert float(p[neuron]) == pytest.approx(p_ref, rel=1e-3, abs=1e-12)


def test_f_survival_extremes_match_scipy():
    for f, d1, d2 in [(0.5, 1, 10), (3.0, 1, 100), (50.0, 1, 100000), (1e-4, 1, 7), (8.0, 2, 30)]:
        assert float(f_survival(np.array([f]), d1, d2)[0]) == pytest.approx(scipy_stats.f.sf(f, d1, d2), rel=1e-6, abs=1e-300)


def test_a_language_without_neurons_gives_empty_results():
    # LAPE at a small top_rate can leave a language (en on the demo model) with no neurons
    eta2, p = eta_squared([10, 20], torch.zeros(2, 0), torch.zeros(2, 0), target=0)
    assert eta2.shape == p.shape == (0,)
    assert f_survival(np.zeros(0), 1.0, 5.0).shape == (0,)


def test_jaccard():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    names, matrix = jaccard_matrix({"a": {1}, "b": {1, 2}, "c": set()})
    assert names == ["a", "b", "c"] and matrix[0][1] == 0.5 and matrix[0][0] == 1.0 and matrix[2][0] == 0.0
