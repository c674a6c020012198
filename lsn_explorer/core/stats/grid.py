"""Per-neuron histogram grids: where each activation value is counted (SCIENCE.md §1).

`HistogramGrid` (format 2, written since issue 17) finds a value's bin with a few elementwise
operations — no search — so counting costs less than the forward pass that produces the values.
`EdgeGrid` (format 1) is the grid of statistics stored before: explicit sorted edges per neuron,
searched with `torch.searchsorted`; it is kept so that stored shard accumulators still load, merge
and finalize. Both give `edges(layer)`, the inner bin boundaries that finalization interpolates in.

How `HistogramGrid` places bins. Activations pile up at two kinds of points: the act function's
minimum (SiLU's −0.2785, where the density has an inverse-square-root spike) or any other densest
value, and 0 (the long tail of very negative pre-activations). Each neuron gets two centres from
its calibration sample: c₁, the middle of the shortest interval holding 1/256 of the sample, and
0. Between and around them a monotone map t(x) is logarithmic in the distance to the nearer
centre — t = sign(x − c)·log₂(1 + |x − c|/w), with log₂ evaluated exactly as the float's bit
pattern (piecewise linear between powers of two, the same on every device) — so bins get narrow
toward both piles. The range of t that covers the centres ± 10⁴·IQR is cut into `CELLS` equal
cells; a cell holds a whole number of equal-width bins (in t): half of all bins are spread evenly
over the cells, half in proportion to the calibration sample's share in each cell. The bin of x
is then `offset[cell] + ⌊fraction · bins_in[cell]⌋`: arithmetic only.

Atoms. A value that repeats (the same token opening several windows; bf16 activations) is a pile
of zero width: interpolating inside the bin that holds it would smear it over the bin and miss a
percentile that falls on it by up to the pile's share of ranks. Up to `ATOMS` values per neuron
that make up ≥ 0.5 % of the calibration sample are also counted by exact comparison, and at
finalization each becomes a bin of zero width at its value (accumulator.py). Layers without
such values skip the comparisons.

Accuracy: see the module docstring of accumulator.py.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch

from lsn_explorer.errors import LsnError

GRID_FORMAT = 2
CPU_BLOCK = 2**19  # values per block when working on a CPU (see rows_per_block)
_ONE_BITS = 0x3F800000  # the bit pattern of float32 1.0: bits(1 + y) − bits(1) ≈ 2²³·log₂(1 + y)


class StatsFormatError(LsnError):
    """A stored accumulator written by a format this version cannot read."""


class Grid(Protocol):
    """What an accumulator needs from its grid."""

    n_layers: int
    d_ff: int
    atoms: torch.Tensor  # [n_layers, d_ff, n_atoms] float32 values counted exactly; NaN: unused

    @property
    def bins(self) -> int: ...
    def index(self, layer: int, values: torch.Tensor) -> torch.Tensor: ...
    def index_rows(self, layer: int, rows: torch.Tensor, first: int) -> torch.Tensor: ...
    def edges(self, layer: int) -> torch.Tensor: ...
    def same_as(self, other: object) -> bool: ...
    def state(self) -> dict[str, torch.Tensor]: ...
    def to(self, device: torch.device) -> "Grid": ...


class HistogramGrid:
    """Arithmetic per-neuron grid (format 2); see the module docstring for the layout.

    params [n_layers, d_ff, 6] float32: lower centre, upper centre, their inverse widths 1/w,
    and the affine map of t onto cells (scale, shift). cells [n_layers, d_ff, CELLS] int32: bins
    per cell (≥ 1, summing to `bins`). atoms [n_layers, d_ff, ATOMS] float32: values repeated in
    the calibration sample, whose exact matches the accumulator also counts (NaN: no such value).
    """

    CELLS = 256
    SPAN = 1e4  # the grid reaches the centres ± SPAN · IQR
    EVEN_SHARE = 0.5  # share of bins spread evenly over the cells, the rest follow the sample
    DENSE_SHARE = 1 / 256  # the densest interval holding this share of the sample sets c₁
    MIN_WIDTH = 1e-6  # w of the densest value is at least this many IQRs
    ZERO_WIDTH = 1e-4  # w of 0, in IQRs
    ATOMS = 4  # repeated values per neuron counted exactly
    ATOM_SHARE = 0.005  # a value is an atom when it is at least this share of the sample

    def __init__(self, params: torch.Tensor, cells: torch.Tensor, atoms: torch.Tensor) -> None:
        self.params, self.cells, self.atoms = params, cells.to(torch.int32), atoms
        self.n_layers, self.d_ff = params.shape[:2]
        self._bins = int(self.cells[0, 0].sum()) if self.cells.numel() else 0
        flat_start = (torch.cumsum(self.cells, -1) - self.cells).to(torch.int32)  # first bin of each cell
        # Offsets into one layer's flattened [d_ff, bins] histogram, looked up by cell.
        self._start = (flat_start + torch.arange(self.d_ff, device=cells.device, dtype=torch.int32)
                       .view(1, -1, 1) * self._bins).reshape(self.n_layers, -1)
        self._count = self.cells.reshape(self.n_layers, -1).float()
        self._cell_base = (torch.arange(self.d_ff, device=cells.device, dtype=torch.int32) * self.CELLS).view(-1, 1)
        self._columns = _columns(params)

    @property
    def bins(self) -> int:
        return self._bins

    @classmethod
    def calibrate(cls, layers: list[torch.Tensor], bins: int = 1024) -> "HistogramGrid":
        """Grid from a calibration batch: `layers[l]` holds [tokens, d_ff] values of layer l."""
        if bins < cls.CELLS:
            raise LsnError(f"bins {bins} is too few for the histogram grid",
                           f"use --bins {cls.CELLS} or more (default 1024)")
        params, cells, atoms = [], [], []
        for values in layers:
            ordered = _sorted_rows(values.float().T.contiguous())  # [d_ff, tokens], sorted once
            params.append(cls._centres(ordered))
            cells.append(cls._allocate(params[-1], ordered, bins))
            atoms.append(cls._atoms(ordered))
        return cls(torch.stack(params), torch.stack(cells), torch.stack(atoms))

    @classmethod
    def _atoms(cls, ordered: torch.Tensor) -> torch.Tensor:
        """Up to ATOMS most repeated values per neuron [d_ff, ATOMS], NaN where fewer repeat.

        Identical activations are common (the same token opening several windows, bf16 models):
        inside a bin, interpolation would smear such a pile over the bin's width, so a percentile
        falling on it could miss it by the pile's share of ranks. Counted exactly, it is found.
        """
        n = ordered.shape[-1]
        least = max(2, math.ceil(cls.ATOM_SHARE * n))  # an atom repeats at least this often
        if n < least or not bool((ordered[:, least - 1:] == ordered[:, :n - least + 1]).any()):
            return ordered.new_full((ordered.shape[0], cls.ATOMS), math.nan)  # the usual float32 case
        position = torch.arange(n, device=ordered.device).expand_as(ordered)
        first = torch.ones_like(ordered, dtype=torch.bool)
        first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        # A run starting at i ends where the next run starts: the least start after i.
        later_start = torch.where(first, position, n)[:, 1:]
        later_start = torch.cat([later_start, torch.full_like(later_start[:, :1], n)], -1)
        run_end = later_start.flip(-1).cummin(-1).values.flip(-1)
        length = torch.where(first, run_end - position, 0)
        # Longest runs first, the lower value among equal lengths: the same choice on every device.
        top = (length * (n + 1) - position).topk(min(cls.ATOMS, n), -1).indices
        value, count = ordered.gather(-1, top), length.gather(-1, top)
        atoms = torch.where(count >= least, value, math.nan)
        return torch.nn.functional.pad(atoms, (0, cls.ATOMS - atoms.shape[-1]), value=math.nan)

    @classmethod
    def _centres(cls, ordered: torch.Tensor) -> torch.Tensor:
        """params [d_ff, 6] of one layer from its sorted calibration values [d_ff, tokens]."""
        n = ordered.shape[-1]
        k = min(max(2, int(n * cls.DENSE_SHARE)), n - 1)
        widths = ordered[:, k:] - ordered[:, :-k]
        densest = widths.argmin(-1, keepdim=True)
        c1 = ordered.gather(-1, densest + k // 2).squeeze(-1)
        iqr = (ordered[:, (3 * n) // 4] - ordered[:, n // 4]).clamp(min=1e-6)
        # w: a 64th of the densest interval, so bins keep narrowing well inside a pile.
        w1 = (widths.gather(-1, densest).squeeze(-1) / 64).clamp(min=iqr * cls.MIN_WIDTH)
        w0 = iqr * cls.ZERO_WIDTH
        zero = torch.zeros_like(c1)
        c1_low = c1 < 0
        lo, hi = torch.minimum(c1, zero), torch.maximum(c1, zero)
        k_lo, k_hi = torch.where(c1_low, 1 / w1, 1 / w0), torch.where(c1_low, 1 / w0, 1 / w1)
        mid = (lo + hi) / 2
        t_min = _t(lo - cls.SPAN * iqr, lo, hi, k_lo, k_hi, mid)
        t_max = _t(hi + cls.SPAN * iqr, lo, hi, k_lo, k_hi, mid)
        scale = cls.CELLS / (t_max - t_min)
        return torch.stack([lo, hi, k_lo, k_hi, scale, -t_min * scale], -1)

    @classmethod
    def _allocate(cls, params: torch.Tensor, ordered: torch.Tensor, bins: int) -> torch.Tensor:
        """Bins per cell [d_ff, CELLS] from the calibration sample's share in each cell
        (`ordered`: [d_ff, tokens], one neuron per row)."""
        d_ff, n = ordered.shape
        columns = _columns(params)
        counts = torch.zeros(d_ff * cls.CELLS, dtype=torch.int64, device=ordered.device)
        step = rows_per_block(n, ordered.device)
        for first in range(0, d_ff, step):
            rows = ordered[first:first + step]
            cell = _cell_axis(rows, columns[:, first:first + step], cls.CELLS).to(torch.int32)
            cell += (torch.arange(len(rows), device=ordered.device, dtype=torch.int32) * cls.CELLS).view(-1, 1)
            counts[first * cls.CELLS:(first + len(rows)) * cls.CELLS] += torch.bincount(
                cell.view(-1), minlength=len(rows) * cls.CELLS)
        share = counts.view(d_ff, cls.CELLS).double() / n
        even = max(1, int(bins * cls.EVEN_SHARE) // cls.CELLS)
        extra = bins - even * cls.CELLS
        wanted = share * extra
        whole = wanted.floor()
        # Largest remainders take the bins left over, so every neuron has exactly `bins`.
        left = (extra - whole.sum(-1)).long()
        order = (wanted - whole).argsort(-1, descending=True)
        ranks = torch.arange(cls.CELLS, device=ordered.device).unsqueeze(0)
        whole.scatter_add_(1, order, (ranks < left.unsqueeze(-1)).double())
        return (whole + even).to(torch.int32)

    def index(self, layer: int, values: torch.Tensor) -> torch.Tensor:
        """Position of each value of `values` [tokens, d_ff] in layer `layer`'s flattened
        [d_ff, bins] histogram (neuron · bins + bin): int32 [tokens, d_ff]."""
        return self.index_rows(layer, values.T.contiguous(), 0).T

    def index_rows(self, layer: int, rows: torch.Tensor, first: int) -> torch.Tensor:
        """`index` for neurons first … first + n − 1, one row of values each: rows [n, tokens] →
        int32 [n, tokens]. Neuron-major, so each row reads one neuron's cell table and (when
        counted) one neuron's histogram: on a CPU these stay in cache, whatever the model's width."""
        return bin_positions(rows, *self.tables(layer, first, first + len(rows)), self._bins)

    def tables(self, layer: int, first: int, last: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """What `bin_positions` needs for neurons first … last − 1 of a layer, besides the values."""
        return self._columns[layer, :, first:last], self._start[layer], self._count[layer], self._cell_base[first:last]

    def edges(self, layer: int) -> torch.Tensor:
        """Inner bin boundaries of a layer [d_ff, bins − 1], float64, increasing."""
        cells = self.cells[layer].long().cpu()
        p = self.params[layer].double().cpu()
        bins = torch.arange(self.bins).expand(self.d_ff, -1)
        starts = torch.cumsum(cells, -1) - cells
        cell = torch.searchsorted(starts.contiguous(), bins.contiguous(), right=True) - 1
        u = cell.double() + (bins - starts.gather(1, cell)).double() / cells.gather(1, cell).double()
        t = (u[:, 1:] - p[:, 5:6]) / p[:, 4:5]
        # Invert t = T_lo(min(x, mid)) + T_hi(max(x, mid)) one side at a time.
        mid = ((p[:, 0] + p[:, 1]) / 2).float()
        t_mid_lo = _side(mid, p[:, 0].float(), p[:, 2].float()).double().unsqueeze(-1)
        t_mid_hi = _side(mid, p[:, 1].float(), p[:, 3].float()).double().unsqueeze(-1)
        below = _side_inverse(torch.minimum(t - t_mid_hi, t_mid_lo), p[:, 0:1], p[:, 2:3])
        above = _side_inverse(torch.maximum(t - t_mid_lo, t_mid_hi), p[:, 1:2], p[:, 3:4])
        return torch.where(t <= t_mid_lo + t_mid_hi, below, above)

    def same_as(self, other: object) -> bool:
        if not isinstance(other, HistogramGrid):
            return False
        device = self.params.device
        return (torch.equal(self.params, other.params.to(device)) and torch.equal(self.cells, other.cells.to(device))
                and torch.equal(self.atoms.nan_to_num(math.inf), other.atoms.to(device).nan_to_num(math.inf)))

    def state(self) -> dict[str, torch.Tensor]:
        return {"grid_format": torch.tensor([GRID_FORMAT]), "grid_params": self.params.cpu(),
                "grid_cells": self.cells.cpu(), "grid_atoms": self.atoms.cpu()}

    def to(self, device: torch.device) -> "HistogramGrid":
        if self.params.device == torch.device(device):
            return self  # the lookup tables cost ~0.1 s per 32 k neurons to build again
        return HistogramGrid(self.params.to(device), self.cells.to(device), self.atoms.to(device))


def _columns(params: torch.Tensor) -> torch.Tensor:
    """The map's constants as columns: params [..., d_ff, 6] → [..., 7, d_ff, 1] (lower centre,
    upper centre, their 1/w, cell scale, cell shift, midpoint), so that a slice of neurons
    broadcasts along their rows of values without a strided read."""
    lo, hi = params[..., 0], params[..., 1]
    parts = [params[..., i] for i in range(6)] + [(lo + hi) / 2]
    return torch.stack(parts, -2).unsqueeze(-1).contiguous()


def bin_positions(rows: torch.Tensor, columns: torch.Tensor, start: torch.Tensor, count: torch.Tensor,
                  cell_base: torch.Tensor, bins: int) -> torch.Tensor:
    """Positions of rows [n, tokens] (one neuron each) in a layer's flattened [d_ff, bins] histogram,
    from `HistogramGrid.tables`: int32 [n, tokens]. Tensors in, tensors out, so that the counting
    kernel (kernel.py) can compile it together with the sums."""
    u = _cell_axis(rows, columns, HistogramGrid.CELLS)
    cell = u.to(torch.int32)
    # The fraction of the way through the cell (u ≥ 0, so frac is u − cell exactly), kept below
    # 1 − 1/(2·bins): rounding in the product below can then never reach the next cell.
    fraction = torch.frac(u).clamp_(max=1 - 0.5 / bins)
    cell += cell_base
    flat = cell.reshape(-1)  # a view when rows are contiguous
    first_bin = start.index_select(0, flat).reshape(cell.shape)
    # Bins per cell as float32 (exact: at most `bins`): no mixed-type product.
    return first_bin.add_(fraction.mul_(count.index_select(0, flat).reshape(cell.shape)).to(torch.int32))


def _cell_axis(rows: torch.Tensor, columns: torch.Tensor, cells: int) -> torch.Tensor:
    """Position on the cell axis of rows [n, tokens] (one neuron each, constants `columns`
    [7, n, 1]), clipped to [0, cells): float32."""
    lo, hi, k_lo, k_hi, scale, shift, mid = columns
    return _t(rows, lo, hi, k_lo, k_hi, mid).mul_(scale).add_(shift).clamp_(0, cells * (1 - 2**-20))


def rows_per_block(tokens: int, device: torch.device) -> int:
    """Neurons per block when working neuron by neuron: on a CPU, blocks of ~CPU_BLOCK values keep
    the dozen temporaries of one block in cache; elsewhere one block holds every neuron."""
    return max(1, CPU_BLOCK // max(tokens, 1)) if device.type == "cpu" else 2**62


def _sorted_rows(rows: torch.Tensor) -> torch.Tensor:
    """Each row sorted ascending. On a CPU numpy's vectorised sort is about 5× faster than
    torch.sort for rows of a few thousand float32 values; the result is the same."""
    if rows.device.type == "cpu":
        return torch.from_numpy(np.sort(rows.detach().numpy(), axis=-1))
    return rows.sort(-1).values


def _side(x: torch.Tensor, centre: torch.Tensor, inv_width: torch.Tensor) -> torch.Tensor:
    """sign(x − c) · 2²³·log₂(1 + |x − c|/w), the log read off the float's bits (exact, monotone)."""
    d = (x - centre).mul_(inv_width)
    bits = d.abs().add_(1).view(torch.int32).sub_(_ONE_BITS)
    return bits.to(torch.float32).copysign_(d)


def _t(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, k_lo: torch.Tensor, k_hi: torch.Tensor,
       mid: torch.Tensor) -> torch.Tensor:
    """The monotone map of the module docstring: logarithmic toward the lower centre `lo` below
    the midpoint `mid`, toward the upper one `hi` above it (k: 1/w); each broadcasts against x."""
    return _side(torch.minimum(x, mid), lo, k_lo).add_(_side(torch.maximum(x, mid), hi, k_hi))


def _side_inverse(t: torch.Tensor, centre: torch.Tensor, inv_width: torch.Tensor) -> torch.Tensor:
    """x with `_side(x) = t` (float64; t in units of 2⁻²³ log₂)."""
    level = t.abs() / 2**23
    octave = level.floor()
    one_plus = torch.exp2(octave) * (1 + level - octave)  # the float whose bits are level·2²³ + bits(1)
    return centre + (one_plus - 1) * t.sign() / inv_width


class EdgeGrid:
    """Format-1 grid (statistics stored before issue 17): sorted edges [n_layers, d_ff, bins − 1]
    per neuron, searched with torch.searchsorted. Loaded from stored accumulators only."""

    def __init__(self, edges: torch.Tensor) -> None:
        self.edges_ = edges
        self.n_layers, self.d_ff = edges.shape[:2]
        # Format 1 gave repeated values one-ulp bins of their own instead of counting them apart.
        self.atoms = edges.new_zeros((*edges.shape[:2], 0))

    @property
    def bins(self) -> int:
        return self.edges_.shape[-1] + 1

    def index(self, layer: int, values: torch.Tensor) -> torch.Tensor:
        return self.index_rows(layer, values.T.contiguous(), 0).T

    def index_rows(self, layer: int, rows: torch.Tensor, first: int) -> torch.Tensor:
        last = first + len(rows)
        bins = torch.searchsorted(self.edges_[layer, first:last], rows, right=True)
        return bins + torch.arange(first, last, device=rows.device).view(-1, 1) * self.bins

    def edges(self, layer: int) -> torch.Tensor:
        return self.edges_[layer].double().cpu()

    def same_as(self, other: object) -> bool:
        return isinstance(other, EdgeGrid) and torch.equal(self.edges_, other.edges_.to(self.edges_.device))

    def state(self) -> dict[str, torch.Tensor]:
        return {"grid_edges": self.edges_.cpu()}

    def to(self, device: torch.device) -> "EdgeGrid":
        return EdgeGrid(self.edges_.to(device))


def grid_from_state(state: dict[str, torch.Tensor]) -> Grid:
    """The grid of a stored accumulator, whichever format wrote it."""
    if "grid_format" in state:
        version = int(state["grid_format"][0])
        if version == GRID_FORMAT:
            return HistogramGrid(state["grid_params"], state["grid_cells"], state["grid_atoms"])
        raise StatsFormatError(f"stored statistics use histogram format {version}; this version reads "
                               f"formats 1 and {GRID_FORMAT}", "update lsn-explorer, or collect these statistics again")
    if "grid_edges" in state:
        return EdgeGrid(state["grid_edges"])
    raise StatsFormatError("a stored accumulator has no histogram grid", "collect these statistics again")
