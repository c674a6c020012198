"""The arithmetic histogram grid: bin indices agree with its own edges searched by
torch.searchsorted, percentiles agree with exact torch.quantile, and format-1 accumulators (stored
before the grid changed) still load, merge and finalize."""

from __future__ import annotations

import pytest
import torch

from lsn_explorer.core.stats.accumulator import StatsAccumulator
from lsn_explorer.core.stats.grid import EdgeGrid, HistogramGrid, StatsFormatError
from lsn_explorer.core.vocab import PERCENTILES

QS = torch.tensor([p / 100 for p in PERCENTILES])


def silu_like(n: int, d_ff: int, seed: int) -> torch.Tensor:
    """SiLU of Gaussian pre-activations with per-neuron means: a spike at −0.2785 and a pile at 0⁻."""
    g = torch.Generator().manual_seed(seed)
    pre = torch.randn(n, d_ff, generator=g) * 2 + torch.linspace(-6, 2, d_ff)
    return torch.nn.functional.silu(pre)


def rank_error(values: torch.Tensor, estimates: torch.Tensor) -> torch.Tensor:
    """How far (in quantile rank) each estimate [Q, d_ff] lies outside the ranks it could have."""
    ordered = values.T.contiguous().sort(-1).values
    n = ordered.shape[-1]
    est = estimates.T.contiguous()
    below = torch.searchsorted(ordered, est) / (n - 1)
    above = torch.searchsorted(ordered, est, right=True) / (n - 1)
    return torch.maximum(below - QS, QS - above).clamp(min=0)


@pytest.mark.parametrize("data", ["silu", "gauss", "drift"])
def test_index_equals_searching_the_grids_own_edges(data):
    g = torch.Generator().manual_seed(1)
    calib = silu_like(2048, 32, 0) if data == "silu" else torch.randn(2048, 32, generator=g)
    values = {"silu": silu_like(5000, 32, 2), "gauss": torch.randn(5000, 32, generator=g),
              "drift": 3 + 20 * torch.randn(5000, 32, generator=g)}[data]
    grid = HistogramGrid.calibrate([calib])
    edges = grid.edges(0)
    assert edges.shape == (32, grid.bins - 1) and bool((edges[:, 1:] >= edges[:, :-1]).all())
    searched = torch.searchsorted(edges, values.T.double().contiguous(), right=True).T
    got = grid.index(0, values).long() - torch.arange(32) * grid.bins
    assert bool(((got >= 0) & (got < grid.bins)).all())
    # The index is computed in float32 and the edges in float64: a value within float32 rounding
    # of an edge may fall on either side; everything else lands in the searched bin.
    assert (got - searched).abs().max() <= 1
    assert (got != searched).float().mean() < 1e-3


def one_pass(acc, values):
    """Layer 0's values added in 512-token batches; the finalized statistics and P5…P95 [percentiles, d_ff]."""
    for start in range(0, len(values), 512):
        acc.update(0, values[start:start + 512])
    acc.end_batch(len(values))
    stats = acc.finalize()
    return stats, torch.stack([stats[f"p{p}"][0] for p in PERCENTILES])


@pytest.mark.parametrize("data", ["silu", "gauss"])
def test_percentiles_within_a_fifth_of_a_rank_of_torch_quantile(data):
    g = torch.Generator().manual_seed(3)
    values = silu_like(30000, 48, 4) if data == "silu" else torch.randn(30000, 48, generator=g) * 0.1 + 1
    stats, est = one_pass(StatsAccumulator(HistogramGrid.calibrate([values[:2048]])), values)
    assert rank_error(values, est).max() <= 0.002
    exact = torch.quantile(values, QS, dim=0)
    assert torch.allclose(est, exact, atol=0.02 * float(values.std()))
    above = (values > stats["p90"][0]).float().mean(0)
    assert (stats["act90"][0] - above).abs().max() < 0.005


def test_format_one_accumulators_still_load_merge_and_finalize():
    g = torch.Generator().manual_seed(5)
    values = torch.randn(4000, 8, generator=g)
    edges = torch.quantile(values[:2048], torch.linspace(0, 1, 255), dim=0).T.contiguous()  # [8, 255]
    parts = []
    for half in (values[:2000], values[2000:]):
        acc = StatsAccumulator(EdgeGrid(edges.unsqueeze(0)))
        acc.update(0, half)
        acc.end_batch(len(half))
        state = acc.state()
        assert "grid_edges" in state and "grid_format" not in state  # what wave-1 sessions hold
        parts.append(StatsAccumulator.from_state(state))
    parts[0].merge(parts[1])
    hist = parts[0].hist[0]
    expected = torch.stack([torch.bincount(torch.searchsorted(edges[n], values[:, n].contiguous(), right=True),
                                           minlength=256) for n in range(8)])
    assert torch.equal(hist.long(), expected)
    stats = parts[0].finalize()
    assert rank_error(values, torch.stack([stats[f"p{p}"][0] for p in PERCENTILES])).max() <= 0.01


def test_grids_of_different_formats_do_not_merge_and_unknown_formats_are_named():
    values = torch.randn(2048, 4)
    new = StatsAccumulator(HistogramGrid.calibrate([values]))
    old = StatsAccumulator(EdgeGrid(torch.linspace(-1, 1, 1023).expand(1, 4, -1).contiguous()))
    with pytest.raises(StatsFormatError, match="cannot be merged"):
        new.merge(old)
    state = new.state() | {"grid_format": torch.tensor([9])}
    with pytest.raises(StatsFormatError, match="format 9"):
        StatsAccumulator.from_state(state)


def piled(n: int, seed: int) -> torch.Tensor:
    """Gaussian neurons where 3 % of the tokens share one value and 2 % another (identical
    contexts, bf16 activations): P50 and P95 of some neurons fall on a pile."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(n, 16, generator=g)
    values[::33] = 0.56828
    values[1::50, :8] = -0.2785
    values[2::40, 8:] = 1.6449  # near P95 of a standard normal
    return values


def test_repeated_values_are_counted_exactly_and_percentiles_on_them_are_exact():
    values = piled(12000, 6)
    grid = HistogramGrid.calibrate([values[:2048]])
    atoms = grid.atoms[0]
    assert bool((atoms[:, 0] == 0.56828).all())  # the biggest pile of every neuron, first
    assert bool((atoms[:8] == -0.2785).any(-1).all()) and bool((atoms[8:] == 1.6449).any(-1).all())
    stats, est = one_pass(StatsAccumulator(grid), values)
    assert rank_error(values, est).max() <= 0.002
    exact = torch.quantile(values, QS, dim=0)
    on_pile = (exact == 0.56828) | (exact == -0.2785) | (exact == 1.6449)
    assert bool(on_pile.any()) and torch.equal(est[on_pile], exact[on_pile])
    above = (values > stats["p90"][0]).float().mean(0)
    assert (stats["act90"][0] - above).abs().max() < 0.002


def test_shards_with_atoms_merge_into_the_single_pass():
    values = piled(6000, 7)
    grid = HistogramGrid.calibrate([values[:2048]])
    whole, parts = StatsAccumulator(grid), [StatsAccumulator(grid) for _ in range(3)]
    for k, start in enumerate(range(0, len(values), 500)):
        for acc in (whole, parts[k % 3]):
            acc.update(0, values[start:start + 500])
            acc.end_batch(len(values[start:start + 500]))
    merged = StatsAccumulator.from_state(parts[0].state())
    for part in parts[1:]:
        merged.merge(StatsAccumulator.from_state(part.state()))
    assert torch.equal(merged.hist, whole.hist) and torch.equal(merged.atom_hits, whole.atom_hits)
    assert int(whole.atom_hits[0, :, 0].sum()) == int((values == 0.56828).sum())
    for name, value in whole.finalize().items():
        assert torch.equal(merged.finalize()[name], value), name


@pytest.mark.parametrize("bins", [256, 300, 511, 1024])
def test_every_value_lands_in_its_own_neurons_bins_at_small_bin_counts(bins):
    """Each cell keeps at least one bin (at 256 bins the sample-following half would otherwise
    leave empty cells, and a value there indexed the next neuron's histogram or past its end)."""
    g = torch.Generator().manual_seed(bins)
    sample = torch.nn.functional.silu(torch.randn(2048, 8, generator=g) * 3)
    grid = HistogramGrid.calibrate([sample], bins)
    assert grid.bins == bins and int(grid.cells.min()) >= 1
    probe = torch.cat([sample, torch.linspace(-1e6, 1e6, 4001).unsqueeze(1).expand(-1, 8)])
    index = grid.index(0, probe).long()
    neuron = torch.arange(8).expand_as(index)
    assert bool(((index >= neuron * bins) & (index < (neuron + 1) * bins)).all())


def test_counting_in_blocks_of_neurons_equals_one_block(monkeypatch):
    """The accumulator counts a CPU batch in blocks of neurons; how the neurons are cut must not
    change a count, a sum or a percentile (the cut here leaves a ragged last block)."""
    from lsn_explorer.core.stats import grid as grid_module

    calib, values = silu_like(2048, 48, 0), silu_like(1500, 48, 5)
    values[::7, 3] = values[0, 3]  # an atom, so the exact matches are cut into blocks too
    grid = HistogramGrid.calibrate([torch.cat([calib, values[:300]])])
    whole, _ = one_pass(StatsAccumulator(grid), values)
    monkeypatch.setattr(grid_module, "CPU_BLOCK", 512 * 5)  # blocks of 5 neurons at 512 tokens
    cut_acc = StatsAccumulator(grid)
    cut, _ = one_pass(cut_acc, values)
    assert cut_acc.atom_hits.sum() > 0
    for name in whole:
        assert torch.equal(whole[name], cut[name]), name
    rows = values.T.contiguous()
    assert torch.equal(grid.index_rows(0, rows[10:17], 10), grid.index(0, values)[:, 10:17].T)


def test_compiled_kernel_counts_exactly_like_the_eager_one():
    """torch.compile's fused loop must put every value in the same bin and give the same integer
    sums as the eager ops (the two may meet in one merge); only the float sum of squares may
    differ in its last bits. Batches of two sizes and an atom exercise the shape changes."""
    import shutil

    from lsn_explorer.core.stats import kernel

    if not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("no C++ compiler: torch.compile's CPU backend cannot build the kernel here")
    calib = silu_like(2048, 96, 0)
    calib[::5, 7] = 0.25
    grid = HistogramGrid.calibrate([calib])
    eager = StatsAccumulator(grid, kernel=kernel.block_counts)
    # Unguarded: a compile failure must fail this test, not fall back to eager and pass.
    fused = StatsAccumulator(grid, kernel=kernel.compiled())
    for seed, n in ((3, 512), (4, 512), (5, 333)):
        values = silu_like(n, 96, seed)
        values[::5, 7] = 0.25
        for acc in (eager, fused):
            acc.update(0, values)
            acc.end_batch(n)
    for name in ("positive", "sum_fixed", "minimum", "maximum", "hist", "atom_hits"):
        assert torch.equal(getattr(eager, name), getattr(fused, name)), name
    assert eager.atom_hits.sum() > 0
    torch.testing.assert_close(eager.sumsq, fused.sumsq, rtol=1e-6, atol=0)


def test_kernel_choice_follows_the_run_length_and_the_environment(monkeypatch):
    from lsn_explorer.core.stats import kernel

    cpu, gpu = torch.device("cpu"), torch.device("meta")  # meta stands for any non-CPU device
    monkeypatch.delenv("LSN_STATS_KERNEL", raising=False)
    assert kernel.choose(cpu, kernel.COMPILE_FROM_VALUES - 1) is kernel.block_counts
    assert kernel.choose(cpu, kernel.COMPILE_FROM_VALUES) is not kernel.block_counts
    assert kernel.choose(gpu, 10 * kernel.COMPILE_FROM_VALUES) is kernel.block_counts
    monkeypatch.setenv("LSN_STATS_KERNEL", "eager")
    assert kernel.choose(cpu, 10 * kernel.COMPILE_FROM_VALUES) is kernel.block_counts
    monkeypatch.setenv("LSN_STATS_KERNEL", "compiled")
    assert kernel.choose(gpu, 1) is not kernel.block_counts
    monkeypatch.setenv("LSN_STATS_KERNEL", "fastest")  # unknown: the automatic choice, with a warning
    assert kernel.choose(cpu, 1) is kernel.block_counts


def test_a_kernel_that_fails_to_compile_falls_back_to_eager_counting():
    from lsn_explorer.core.stats import kernel

    def broken(*args):
        raise RuntimeError("no C++ compiler found")

    grid = HistogramGrid.calibrate([silu_like(2048, 16, 0)])
    values = silu_like(512, 16, 1)
    fallback, eager = StatsAccumulator(grid, kernel=kernel.guarded(broken)), StatsAccumulator(grid)
    for acc in (fallback, eager):
        acc.update(0, values)
        acc.update(0, values)
    assert torch.equal(fallback.hist, eager.hist) and torch.equal(fallback.sum_fixed, eager.sum_fixed)
