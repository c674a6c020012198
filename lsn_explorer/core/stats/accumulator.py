"""Streaming, mergeable per-neuron activation statistics (SCIENCE.md §1).

`StatsAccumulator` holds sums and counts for one language at one site, shaped [layer, neuron]:
token count, count of values > 0, fixed-point sum, sum of squares, min, max, and a per-neuron
histogram on a fixed grid. Memory depends on the model, not on the corpus length, and two
accumulators merge by addition — exactly, because every field is an integer count, an integer
fixed-point sum, or a min/max (only the sum of squares is float64, merged to ~1e-15 relative).
`finalize` turns an accumulator into `ActivationStats`: probability, mean, P5…P95 and the
fraction above the language's own P90.

Percentile accuracy (consistent mode): each neuron has its own fixed bin edges, set from a
calibration sample (the language's first ≥ 2048 tokens, which every shard computes the same way):
three quarters of the edges are that sample's quantiles at evenly spaced probabilities, so bins
hold about equal shares of the values wherever the distribution is dense (such as the pile of SiLU
outputs at its minimum, −0.2785); the rest are spaced evenly in asinh((x − median) / (IQR/4))
out to 10^5 quarter-IQRs, so values the calibration sample never showed still land in bins about
10 % of their distance from the median wide (with 1024 bins). A percentile is interpolated
linearly inside the bin holding its rank (outermost bins clipped to the neuron's exact min / max),
so its rank error is at most the share of values in that bin: ≈ 1/768 of the tokens when the
corpus resembles its first tokens. Tested against exact torch.quantile on the demo corpus: every
estimate lies within the exact values at ±0.5 percentile ranks
(tests/integration/test_demo_science.py).

Faithful mode (Mondal et al. code): statistics of g per batch of 4 × 512 tokens, quantiles by
linear interpolation inside the batch, then averaged over batches. The accumulator keeps the
per-batch sums for that alongside the histogram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lsn_explorer.core.vocab import PERCENTILES, Mode

STAT_NAMES: tuple[str, ...] = ("prob", "mean") + tuple(f"p{p}" for p in PERCENTILES) + ("act90",)
FIXED_POINT = 2.0**20  # sum of values kept as int64 multiples of 2^-20 so merges are exact


@dataclass
class HistogramGrid:
    """Per-neuron sorted bin edges [n_layers, d_ff, n_edges]; bin k holds values in
    [edges[k−1], edges[k]), bin 0 everything below the first edge, the last bin everything from
    the last edge up. Shared by every accumulator that may be merged (merges need equal grids)."""

    edges: torch.Tensor  # [n_layers, d_ff, n_edges] float32, sorted along the last dim

    SPAN = 1e5  # the asinh edges reach median ± SPAN · IQR/4
    QUANTILE_SHARE = 0.75  # share of edges placed at calibration quantiles

    @property
    def bins(self) -> int:
        return self.edges.shape[-1] + 1

    @classmethod
    def calibrate(cls, layers: list[torch.Tensor], bins: int = 1024) -> "HistogramGrid":
        """Edges from a calibration batch: `layers[l]` holds [tokens, d_ff] values of layer l."""
        n_edges = bins - 1
        n_quantile = int(n_edges * cls.QUANTILE_SHARE)
        n_asinh = n_edges - n_quantile
        probs = torch.linspace(0, 1, n_quantile)
        t = torch.linspace(-math.asinh(cls.SPAN), math.asinh(cls.SPAN), n_asinh)
        per_layer = []
        for values in layers:
            ordered = values.float().cpu().T.contiguous().sort(-1).values  # [d_ff, tokens]
            quantile_edges = _sorted_quantiles(ordered, probs)  # [d_ff, n_quantile]
            # A value repeated in the sample (ties: bf16 activations, recurring contexts) shows up
            # as repeated edges; moving each repeat one ulp up gives that value a bin of its own,
            # so a percentile falling on it is estimated to within an ulp.
            repeat = quantile_edges[:, 1:] == quantile_edges[:, :-1]
            quantile_edges[:, 1:] = torch.where(
                repeat, torch.nextafter(quantile_edges[:, :-1], torch.tensor(math.inf)), quantile_edges[:, 1:])
            q25, q50, q75 = _sorted_quantiles(ordered, torch.tensor([0.25, 0.5, 0.75])).T
            scale = ((q75 - q25) / 4).clamp(min=1e-6)
            asinh_edges = q50.unsqueeze(-1) + torch.sinh(t) * scale.unsqueeze(-1)
            per_layer.append(torch.cat([quantile_edges, asinh_edges], -1).sort(-1).values)
        return cls(torch.stack(per_layer).contiguous())

    def index(self, layer: int, values: torch.Tensor) -> torch.Tensor:
        """Bin index [tokens, d_ff] of each value of `values` [tokens, d_ff] in layer `layer`."""
        edges = self.edges[layer].to(values.device)
        return torch.searchsorted(edges, values.T.contiguous(), right=True).T

    def same_as(self, other: "HistogramGrid") -> bool:
        return torch.equal(self.edges, other.edges)


def _sorted_quantiles(ordered: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Quantiles with linear interpolation (torch.quantile's convention) of rows that are
    already sorted: ordered [rows, n] → [rows, len(probs)]. torch.quantile is slow for
    hundreds of probabilities; one sort and a gather are not."""
    n = ordered.shape[-1]
    position = probs.double() * (n - 1)
    below = position.floor().long()
    above = (below + 1).clamp(max=n - 1)
    frac = (position - below).float()
    return ordered[:, below] + frac * (ordered[:, above] - ordered[:, below])


class StatsAccumulator:
    """Sums and counts for one language and site; shapes [n_layers, d_ff] (hist adds bins)."""

    def __init__(self, grid: HistogramGrid, device: str | torch.device = "cpu") -> None:
        self.grid = grid
        self.n_layers, self.d_ff = grid.edges.shape[:2]
        self.device = torch.device(device)
        self.tokens = 0
        self.batches = 0
        shape, dev = (self.n_layers, self.d_ff), self.device
        self.positive = torch.zeros(shape, dtype=torch.int64, device=dev)
        self.sum_fixed = torch.zeros(shape, dtype=torch.int64, device=dev)
        self.sumsq = torch.zeros(shape, dtype=torch.float64, device=dev)
        self.minimum = torch.full(shape, math.inf, dtype=torch.float32, device=dev)
        self.maximum = torch.full(shape, -math.inf, dtype=torch.float32, device=dev)
        self.hist = torch.zeros((*shape, grid.bins), dtype=torch.int32, device=dev)
        # Faithful mode: per-batch prob, mean and percentiles, summed over batches.
        self.batch_sums = torch.zeros((*shape, 2 + len(PERCENTILES)), dtype=torch.float64, device=dev)
        self._offsets = torch.arange(self.d_ff, device=dev) * grid.bins
        self._one = torch.ones(1, dtype=torch.int32, device=dev)
        self._quantiles = torch.tensor([p / 100 for p in PERCENTILES], device=dev)

    # -- filling -------------------------------------------------------------------------------
    def update(self, layer: int, values: torch.Tensor, *, per_batch: bool = False) -> None:
        """Add the activations of one layer: `values` [tokens, d_ff] (any float dtype).

        Call once per layer per batch, then `end_batch(n_tokens)`. With per_batch=True the
        faithful per-batch statistics of this batch are added too.
        """
        x = values.reshape(-1, self.d_ff).to(self.device, torch.float32)
        self.positive[layer] += (x > 0).sum(0)
        # Scaling by 2^20 and rounding are exact in float32; the integer sums then merge exactly.
        self.sum_fixed[layer] += torch.round(x * FIXED_POINT).long().sum(0)
        self.sumsq[layer] += x.square().sum(0).double()
        torch.minimum(self.minimum[layer], x.min(0).values, out=self.minimum[layer])
        torch.maximum(self.maximum[layer], x.max(0).values, out=self.maximum[layer])
        # Counting straight into the int32 histogram avoids a dense [d_ff × bins] temporary per call.
        flat = (self.grid.index(layer, x) + self._offsets).flatten()
        self.hist[layer].view(-1).index_add_(0, flat, self._one.expand(flat.numel()))
        if per_batch:
            stats = torch.cat([
                (x > 0).float().mean(0, keepdim=True),
                x.mean(0, keepdim=True),
                torch.quantile(x, self._quantiles, dim=0, interpolation="linear"),
            ]).T
            self.batch_sums[layer] += stats.double()

    def end_batch(self, n_tokens: int) -> None:
        """Count the tokens of a batch whose layers have all been added."""
        self.tokens += int(n_tokens)
        self.batches += 1
        if self.tokens >= 2**31 - 1:
            raise OverflowError("more than 2^31 tokens in one accumulator; shard the corpus")

    def merge(self, other: "StatsAccumulator") -> None:
        """Add another accumulator with the same grid (e.g. another shard of the same language)."""
        if not self.grid.same_as(other.grid):
            raise ValueError("accumulators with different grids cannot be merged")
        self.tokens += other.tokens
        self.batches += other.batches
        for name in ("positive", "sum_fixed", "sumsq", "hist", "batch_sums"):
            getattr(self, name).add_(getattr(other, name).to(self.device))
        torch.minimum(self.minimum, other.minimum.to(self.device), out=self.minimum)
        torch.maximum(self.maximum, other.maximum.to(self.device), out=self.maximum)

    # -- persistence ---------------------------------------------------------------------------
    _FIELDS = ("positive", "sum_fixed", "sumsq", "minimum", "maximum", "hist", "batch_sums")

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for a safetensors artifact (see `from_state`)."""
        state = {name: getattr(self, name).cpu() for name in self._FIELDS}
        state["counts"] = torch.tensor([self.tokens, self.batches], dtype=torch.int64)
        state["grid_edges"] = self.grid.edges.cpu()
        return state

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> "StatsAccumulator":
        tokens, batches = (int(v) for v in state["counts"].tolist())
        acc = cls(HistogramGrid(state["grid_edges"]), device)
        acc.tokens, acc.batches = tokens, batches
        for name in cls._FIELDS:
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
                histogram_quantiles(self.hist[layer].cpu(), self._bounds(layer), qs)
                for layer in range(self.n_layers)
            ]).float()  # [layer, neuron, percentile]
            for i, p in enumerate(PERCENTILES):
                out[f"p{p}"] = values[..., i]
        out["act90"] = torch.stack([
            fraction_above(self.hist[layer].cpu(), self._bounds(layer), out["p90"][layer].double())
            for layer in range(self.n_layers)
        ]).float()
        return out

    def _bounds(self, layer: int) -> torch.Tensor:
        """Bounds of every bin of a layer [d_ff, bins + 1]: exact min, the edges, exact max —
        clipped to [min, max] so interpolation stays inside values that occurred."""
        lo = self.minimum[layer].double().cpu().unsqueeze(-1)
        hi = self.maximum[layer].double().cpu().unsqueeze(-1)
        return torch.cat([lo, self.grid.edges[layer].double().cpu(), hi], -1).clamp(min=lo, max=hi)


def histogram_quantiles(hist: torch.Tensor, bounds: torch.Tensor, qs: torch.Tensor) -> torch.Tensor:
    """Quantiles from per-neuron histograms: hist [N, B], bounds [N, B + 1] → [N, len(qs)].

    Uses torch.quantile's rank convention (position q·(n−1) among the sorted values) and linear
    interpolation of that rank inside its bin, as if the bin's values were evenly spread.
    """
    cum = hist.long().cumsum(-1)
    n = cum[:, -1:].double()
    rank = qs.view(1, -1).double() * (n - 1)  # [N, Q]
    b = torch.searchsorted(cum.double(), rank, right=True).clamp_(max=hist.shape[-1] - 1)
    in_bin = hist.long().gather(-1, b).double()
    before = cum.gather(-1, b).double() - in_bin
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
    cum = hist.long().cumsum(-1)
    total = cum[:, -1:].double()
    in_bin = hist.long().gather(-1, b).double()
    above = total - cum.gather(-1, b).double()
    left, right = bounds.gather(-1, b), bounds.gather(-1, b + 1)
    part = ((right - t) / (right - left).clamp(min=1e-30)).clamp(0, 1)
    # A bin one ulp wide holds a single repeated value (see HistogramGrid.calibrate): it is above
    # the threshold entirely or not at all.
    atom = (right - left) <= left.abs() * 2.4e-7 + 1e-30
    part = torch.where(atom, (left > t).double(), part)
    return ((above + part * in_bin) / total.clamp(min=1)).view(-1)
