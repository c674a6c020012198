"""Streaming, mergeable per-neuron activation statistics (SCIENCE.md §1).

`StatsAccumulator` holds sums and counts for one language at one site, shaped [layer, neuron]:
token count, count of values > 0, fixed-point sum, sum of squares, min, max, and a per-neuron
histogram on a fixed grid. Memory depends on the model, not on the corpus length, and two
accumulators merge by addition — exactly, because every field is an integer count, an integer
fixed-point sum, or a min/max (only the sum of squares is float64, merged to ~1e-15 relative).
`finalize` turns an accumulator into `ActivationStats`: probability, mean, P5…P95 and the
fraction above the language's own P90.

Percentile accuracy (consistent mode): each neuron has its own fixed grid (stats/grid.py), set
from a calibration sample (the language's first ≥ 2048 tokens, which every shard computes the same
way) and found by arithmetic, not search: bins narrow logarithmically toward the neuron's densest
value and toward 0, and half of them are shared out in proportion to the sample, so bins stay
narrow where values pile up (SiLU's minimum, −0.2785, and the tail toward 0); the grid reaches
10^4 IQRs beyond, so values the sample never showed still land in bins a few per cent of their
distance from the centres wide (with 1024 bins). Values repeated in the sample (atoms) are counted
exactly and kept as bins of zero width. A percentile is interpolated linearly inside the bin
holding its rank (outermost bins clipped to the neuron's exact min / max), so its rank error is at
most the share of values in that bin; a percentile on an atom is that value exactly.
Measured against exact torch.quantile on the demo model's zh corpus (23,586 tokens, 6 × 768
neurons): worst P5…P95 error over all neurons 0.15 percentile ranks at site s, 0.09 at g and a
(format-1 grid: 0.18, 0.12, 0.09), act90 within 0.001. Tested: synthetic SiLU and Gaussian
neurons within 0.2 ranks and atoms exact (tests/unit/test_stats_grid.py); the tiny model's values,
ties included, and a distribution drifted from its calibration sample within ±0.5 ranks
(tests/unit/test_stats.py); the demo corpus of every language within ±0.5
(tests/integration/test_demo_science.py).

Faithful mode (Mondal et al. code): statistics of g per batch of 4 × 512 tokens, quantiles by
linear interpolation inside the batch, then averaged over batches. The accumulator keeps the
per-batch sums for that alongside the histogram.
"""

from __future__ import annotations

import math

import torch

from lsn_explorer.core.stats.grid import Grid, HistogramGrid, StatsFormatError, grid_from_state, rows_per_block
from lsn_explorer.core.stats.kernel import FIXED_POINT, Kernel, block_counts, row_sums
from lsn_explorer.core.vocab import PERCENTILES, Mode

__all__ = ["HistogramGrid", "StatsAccumulator", "STAT_NAMES", "histogram_quantiles", "fraction_above"]

STAT_NAMES: tuple[str, ...] = ("prob", "mean") + tuple(f"p{p}" for p in PERCENTILES) + ("act90",)


class StatsAccumulator:
    """Sums and counts for one language and site; shapes [n_layers, d_ff] (hist adds bins)."""

    def __init__(self, grid: Grid, device: str | torch.device = "cpu", kernel: Kernel = block_counts) -> None:
        """`kernel`: how a block is counted (kernel.py: eager or compiled; the counts are the same)."""
        self.device = torch.device(device)
        self.kernel = kernel
        self.grid = grid.to(self.device)  # on the device: no grid copies per update
        self.n_layers, self.d_ff = grid.n_layers, grid.d_ff
        self.tokens = 0
        self.batches = 0
        shape, dev = (self.n_layers, self.d_ff), self.device
        self.positive = torch.zeros(shape, dtype=torch.int64, device=dev)
        self.sum_fixed = torch.zeros(shape, dtype=torch.int64, device=dev)
        self.sumsq = torch.zeros(shape, dtype=torch.float64, device=dev)
        self.minimum = torch.full(shape, math.inf, dtype=torch.float32, device=dev)
        self.maximum = torch.full(shape, -math.inf, dtype=torch.float32, device=dev)
        self.hist = torch.zeros((*shape, grid.bins), dtype=torch.int32, device=dev)
        # Exact matches of the grid's atoms (repeated values); also counted in `hist`.
        self.atom_hits = torch.zeros((*shape, grid.atoms.shape[-1]), dtype=torch.int64, device=dev)
        # Atom slots in use per layer (NaN marks a free slot): layers without atoms skip the compares.
        self._atom_columns = self.grid.atoms.permute(0, 2, 1).unsqueeze(-1).contiguous()  # [layer, slot, neuron, 1]
        self._atom_slots = [int((~self.grid.atoms[layer].isnan()).any(0).sum()) for layer in range(self.n_layers)]
        # Faithful mode: per-batch prob, mean and percentiles, summed over batches.
        self.batch_sums = torch.zeros((*shape, 2 + len(PERCENTILES)), dtype=torch.float64, device=dev)
        self._one = torch.ones(1, dtype=torch.int32, device=dev)
        self._quantiles = torch.tensor([p / 100 for p in PERCENTILES], device=dev)

    # -- filling -------------------------------------------------------------------------------
    def update(self, layer: int, values: torch.Tensor, *, per_batch: bool = False) -> None:
        """Add the activations of one layer: `values` [tokens, d_ff] (any float dtype).

        Call once per layer per batch, then `end_batch(n_tokens)`. With per_batch=True the
        faithful per-batch statistics of this batch are added too.
        """
        x = values.reshape(-1, self.d_ff).to(self.device, torch.float32)
        # Neuron by neuron (one row of values each), in blocks of neurons: every row then reads one
        # neuron's cell table and adds into one neuron's histogram, which stay in cache however
        # wide the model is (2–3× faster than token rows on a CPU at d_ff 4096–14336). Counts and
        # integer sums do not depend on the order.
        rows = x.T.contiguous()
        step = rows_per_block(len(x), rows.device)
        for first in range(0, self.d_ff, step):
            self._count(layer, rows[first:first + step], first)
        if per_batch:
            stats = torch.cat([
                (x > 0).float().mean(0, keepdim=True),
                x.mean(0, keepdim=True),
                torch.quantile(x, self._quantiles, dim=0, interpolation="linear"),
            ]).T
            self.batch_sums[layer] += stats.double()

    def _count(self, layer: int, rows: torch.Tensor, first: int) -> None:
        """Count neurons first … first + n − 1 of a layer: rows [n, tokens]."""
        last = first + len(rows)
        if isinstance(self.grid, HistogramGrid):
            positions, *sums = self.kernel(rows, *self.grid.tables(layer, first, last), self.grid.bins)
        else:  # a format-1 grid, loaded from stored statistics: searched, never compiled
            positions, *sums = self.grid.index_rows(layer, rows, first), *row_sums(rows)
        positive, sum_fixed, sumsq, low, high = sums
        self.positive[layer, first:last] += positive
        self.sum_fixed[layer, first:last] += sum_fixed
        self.sumsq[layer, first:last] += sumsq.double()
        torch.minimum(self.minimum[layer, first:last], low, out=self.minimum[layer, first:last])
        torch.maximum(self.maximum[layer, first:last], high, out=self.maximum[layer, first:last])
        # Counting straight into the int32 histogram avoids a dense [d_ff × bins] temporary per call.
        flat = positions.reshape(-1)
        self.hist[layer].view(-1).index_add_(0, flat, self._one.expand(flat.numel()))
        for a in range(self._atom_slots[layer]):  # slots fill from the first, so these are the used ones
            self.atom_hits[layer, first:last, a] += (rows == self._atom_columns[layer, a, first:last]).sum(1)

    def end_batch(self, n_tokens: int) -> None:
        """Count the tokens of a batch whose layers have all been added."""
        self.tokens += int(n_tokens)
        self.batches += 1
        if self.tokens >= 2**31 - 1:
            raise OverflowError("more than 2^31 tokens in one accumulator; shard the corpus")

    def merge(self, other: "StatsAccumulator") -> None:
        """Add another accumulator with the same grid (e.g. another shard of the same language)."""
        if not self.grid.same_as(other.grid):
            raise StatsFormatError("accumulators with different histogram grids cannot be merged",
                                   "merge shards of one run only; shards collected before and after an "
                                   "upgrade differ: collect the older ones again")
        self.tokens += other.tokens
        self.batches += other.batches
        for name in ("positive", "sum_fixed", "sumsq", "hist", "atom_hits", "batch_sums"):
            getattr(self, name).add_(getattr(other, name).to(self.device))
        torch.minimum(self.minimum, other.minimum.to(self.device), out=self.minimum)
        torch.maximum(self.maximum, other.maximum.to(self.device), out=self.maximum)

    # -- persistence ---------------------------------------------------------------------------
    _FIELDS = ("positive", "sum_fixed", "sumsq", "minimum", "maximum", "hist", "atom_hits", "batch_sums")

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for a safetensors artifact (see `from_state`)."""
        state = {name: getattr(self, name).cpu() for name in self._FIELDS}
        state["counts"] = torch.tensor([self.tokens, self.batches], dtype=torch.int64)
        state |= self.grid.state()
        return state

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> "StatsAccumulator":
        tokens, batches = (int(v) for v in state["counts"].tolist())
        acc = cls(grid_from_state(state), device)
        acc.tokens, acc.batches = tokens, batches
        for name in cls._FIELDS:
            if name in state:  # format 1 had no atoms: atom_hits stays empty
                setattr(acc, name, state[name].to(acc.device).clone())
        return acc

    # -- results -------------------------------------------------------------------------------
    def mean(self) -> torch.Tensor:
        return (self.sum_fixed.double() / FIXED_POINT / max(self.tokens, 1)).float()

    def finalize(self, mode: Mode = "consistent") -> dict[str, torch.Tensor]:
        """Statistics per neuron: name → float32 [n_layers, d_ff] for every name in STAT_NAMES."""
        if self.tokens == 0:
            raise ValueError("no tokens were accumulated")
        out: dict[str, torch.Tensor] = {}
        if mode == "faithful":
            averaged = (self.batch_sums / max(self.batches, 1)).float().cpu()
            out["prob"], out["mean"] = averaged[..., 0], averaged[..., 1]
            for i, p in enumerate(PERCENTILES):
                out[f"p{p}"] = averaged[..., 2 + i]
        else:
            out["prob"] = (self.positive.double() / self.tokens).float().cpu()
            out["mean"] = self.mean().cpu()
            qs = self._quantiles.double().cpu()
            # One layer at a time: the cumulative histogram of a whole 8B model would not fit.
            values = torch.stack([
                histogram_quantiles(*self._histogram(layer), qs) for layer in range(self.n_layers)
            ]).float()  # [layer, neuron, percentile]
            for i, p in enumerate(PERCENTILES):
                out[f"p{p}"] = values[..., i]
        out["act90"] = torch.stack([
            fraction_above(*self._histogram(layer), out["p90"][layer].double())
            for layer in range(self.n_layers)
        ]).float()
        return out

    def _histogram(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Counts [d_ff, bins + 2·atoms] float64 and bounds [d_ff, bins + 2·atoms + 1] of a layer.

        Bounds are the exact min, the grid's edges and the exact max, clipped to [min, max] so
        interpolation stays inside values that occurred. Each atom (a repeated value counted
        exactly) becomes a bin of zero width at its value; the bin that also counted it keeps
        the rest of its count, spread over its width on either side of the atom.
        """
        hist = self.hist[layer].cpu().double()
        lo = self.minimum[layer].double().cpu().unsqueeze(-1)
        hi = self.maximum[layer].double().cpu().unsqueeze(-1)
        bounds = torch.cat([lo, self.grid.edges(layer), hi], -1).clamp(min=lo, max=hi)
        hits = self.atom_hits[layer].cpu()
        if hits.shape[-1] == 0:
            return hist, bounds
        used = hits > 0
        atoms = self.grid.atoms[layer]  # [d_ff, A] on the accumulator's device
        # The bin each atom was counted in, found the way `update` found it (not by comparing
        # with float64 edges, which may disagree by one bin at an edge).
        where = self.grid.index_rows(layer, atoms.nan_to_num(0), 0).long().cpu()
        where -= torch.arange(self.d_ff).unsqueeze(-1) * self.grid.bins
        where = torch.where(used, where, hist.shape[-1] - 1)
        value = torch.where(used, atoms.double().cpu(), hi)
        hist.scatter_add_(1, where, -hits.double())  # the rest of each bin holding an atom
        # Cumulative count at every bound, and just below and at every atom: the regular part
        # interpolated inside its bin, plus the atoms ordered before (by value, then by slot).
        cum = torch.cat([torch.zeros_like(lo), hist.cumsum(-1)], -1)  # [d_ff, bins + 1]
        left, right = bounds.gather(1, where), bounds.gather(1, where + 1)
        inside = ((value - left) / (right - left)).nan_to_num(1).clamp(0, 1)
        regular_at_atom = cum.gather(1, where) + inside * hist.gather(1, where)
        slot = torch.arange(hits.shape[-1])
        first = (value.unsqueeze(-1) < value.unsqueeze(-2)) | (
            (value.unsqueeze(-1) == value.unsqueeze(-2)) & (slot.view(-1, 1) < slot.view(1, -1)))  # [d_ff, a', a]
        below_atom = (hits.double().unsqueeze(-1) * first).sum(1)
        below_bound = (hits.double().unsqueeze(1) * (value.unsqueeze(1) < bounds.unsqueeze(-1))).sum(-1)
        atom_cum = regular_at_atom + below_atom
        points = torch.cat([bounds, torch.stack([value, value], -1).flatten(1)], -1)
        totals = torch.cat([cum + below_bound, torch.stack([atom_cum, atom_cum + hits], -1).flatten(1)], -1)
        # Stable: at equal values a bound comes first, then each atom's lower and upper point.
        order = points.sort(dim=-1, stable=True).indices
        totals = totals.gather(1, order)
        return totals.diff(dim=-1).clamp(min=0), points.gather(1, order)


def histogram_quantiles(hist: torch.Tensor, bounds: torch.Tensor, qs: torch.Tensor) -> torch.Tensor:
    """Quantiles from per-neuron histograms: hist [N, B], bounds [N, B + 1] → [N, len(qs)].

    Uses torch.quantile's rank convention (position q·(n−1) among the sorted values) and linear
    interpolation of that rank inside its bin, as if the bin's values were evenly spread.
    """
    counts = hist.double()  # whole counts, or shares of a bin split around an atom
    cum = counts.cumsum(-1)
    n = cum[:, -1:]
    rank = qs.view(1, -1).double() * (n - 1)  # [N, Q]
    b = torch.searchsorted(cum, rank, right=True).clamp_(max=hist.shape[-1] - 1)
    in_bin = counts.gather(-1, b)
    before = cum.gather(-1, b) - in_bin
    frac = ((rank - before + 0.5) / in_bin.clamp(min=1)).clamp(0, 1)
    left, right = bounds.gather(-1, b), bounds.gather(-1, b + 1)
    return left + frac * (right - left)


def fraction_above(hist: torch.Tensor, bounds: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Share of each neuron's values above `threshold` [N], from hist [N, B] and bounds [N, B + 1].

    Whole bins above the threshold count fully; the bin holding it counts for the part of its
    width above the threshold.
    """
    t = threshold.view(-1, 1)
    b = (torch.searchsorted(bounds.contiguous(), t, right=True) - 1).clamp_(0, hist.shape[-1] - 1)
    counts = hist.double()
    cum = counts.cumsum(-1)
    total = cum[:, -1:]
    in_bin = counts.gather(-1, b)
    above = total - cum.gather(-1, b)
    left, right = bounds.gather(-1, b), bounds.gather(-1, b + 1)
    part = ((right - t) / (right - left).clamp(min=1e-30)).clamp(0, 1)
    # A bin at most one ulp wide holds a single repeated value (an atom of the grid, or a format-1
    # one-ulp bin): it is above the threshold entirely or not at all.
    atom = (right - left) <= left.abs() * 2.4e-7 + 1e-30
    part = torch.where(atom, (left > t).double(), part)
    return ((above + part * in_bin) / total.clamp(min=1)).view(-1)
