"""Running a model over one language's text and filling a `StatsAccumulator`.

Text is tokenized as one stream (lines joined by newlines, the tokenizer's BOS once at the start)
and cut into windows of `window` tokens with no padding; windows are grouped into batches of
`batch_size`. Batch k belongs to shard k mod n, so shards of one corpus partition its batches and
their accumulators merge into exactly the single-pass result. The histogram grid is calibrated on
the first batches (≥ CALIBRATION_TOKENS tokens), which every shard computes the same way.

The per-layer update runs inside the nnsight trace, so only one layer's activations are alive at a
time and memory stays flat however long the corpus is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from lsn_explorer.core.progress import Cancel, Progress, stop_if_cancelled
from lsn_explorer.core.stats import kernel
from lsn_explorer.core.stats.accumulator import HistogramGrid, StatsAccumulator
from lsn_explorer.core.vocab import Mode, Site
from lsn_explorer.errors import CorpusError

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle

FAITHFUL_WINDOW, FAITHFUL_BATCH = 512, 4  # Mondal et al.: batches of 4 × 512 tokens
CALIBRATION_TOKENS = 2048  # the histogram grid is set from the first batches up to this many tokens


@dataclass(frozen=True)
class Plan:
    """How a language's text is cut: token windows grouped into batches."""

    batches: list[torch.Tensor]  # each [n_windows, window_len] token ids
    window: int
    total_tokens: int
    short: bool  # the text was shorter than one window


def plan_batches(handle: ModelHandle, lines: Sequence[str], *, window: int, batch_size: int,
                 max_tokens: int | None = None) -> Plan:
    """Tokenize `lines` as one stream and cut it into batches of windows (no padding).

    A final partial window goes into its own batch so that no batch needs padding.
    Raises `CorpusError` when there is no text at all.
    """
    text = "\n".join(line for line in lines if line.strip())
    if not text:
        raise CorpusError("the corpus has no text", "give a file with one sentence per line")
    ids = handle.tokenizer(text, return_tensors="pt")["input_ids"][0]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    n_full = len(ids) // window
    full = ids[: n_full * window].view(n_full, window)
    batches = [full[i:i + batch_size] for i in range(0, n_full, batch_size)]
    rest = ids[n_full * window:]
    if len(rest) > 1:
        batches.append(rest.unsqueeze(0))
    return Plan(batches, window, sum(b.numel() for b in batches), short=n_full == 0)


def collect_stats(
    handle: ModelHandle,
    plan: Plan,
    *,
    site: Site = "s",
    mode: Mode = "consistent",
    shard: tuple[int, int] = (0, 1),
    bins: int = 1024,
    progress: Progress | None = None,
    label: str = "",
    cancel: Cancel | None = None,
) -> StatsAccumulator:
    """Accumulate statistics of `site` over the batches of `plan` that belong to `shard`.

    Args:
        handle: the loaded model.
        plan: batches from `plan_batches`.
        site: g | s | a (faithful mode reads g whatever is asked, as the Mondal code did).
        mode: consistent | faithful (faithful also keeps per-batch percentiles).
        shard: (index, count): this process takes batches k with k % count == index.
        bins: histogram bins per neuron (percentile resolution).
        progress: `progress(label, tokens done, tokens this shard will do)` after each batch.
        label: what `progress` reports as (the language, when a run collects several).
        cancel: when set, stops between batches and raises `Cancelled`.
    """
    site = "g" if mode == "faithful" else handle.arch.check_site(site)
    index, count = shard
    mine = [k for k in range(len(plan.batches)) if k % count == index]
    total = sum(plan.batches[k].numel() for k in mine)
    n_calib = 1
    while n_calib < len(plan.batches) and sum(b.numel() for b in plan.batches[:n_calib]) < CALIBRATION_TOKENS:
        n_calib += 1
    calibration = [_read_layers(handle, plan.batches[k], site) for k in range(n_calib)]
    grid = HistogramGrid.calibrate([torch.cat(rows) for rows in zip(*calibration)], bins)
    # Chosen on the whole corpus, not this shard's part: every shard of a run counts the same way.
    counting = kernel.choose(torch.device(handle.device), plan.total_tokens * handle.n_layers * handle.d_ff)
    acc = StatsAccumulator(grid, device=handle.device, kernel=counting)
    per_batch = mode == "faithful"
    done = 0
    for k in mine:
        stop_if_cancelled(cancel, "statistics collection")
        batch = plan.batches[k]
        if k < n_calib:  # already computed for calibration: one forward pass per batch, not two
            for layer, values in enumerate(calibration[k]):
                acc.update(layer, values, per_batch=per_batch)
        else:
            _accumulate(handle, batch, site, acc, per_batch=per_batch)
        acc.end_batch(batch.numel())
        done += batch.numel()
        if progress is not None:
            progress(label, done, total)
    return acc


def _inputs(handle: ModelHandle, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    ids = batch.to(handle.device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _accumulate(handle: ModelHandle, batch: torch.Tensor, site: Site, acc: StatsAccumulator,
                *, per_batch: bool) -> None:
    from lsn_explorer.core.model.backend import stream_site

    stream_site(handle, _inputs(handle, batch), site,
                lambda layer, values: acc.update(layer, values, per_batch=per_batch))


def _read_layers(handle: ModelHandle, batch: torch.Tensor, site: Site) -> list[torch.Tensor]:
    from lsn_explorer.core.model.backend import read_sites

    layers = read_sites(handle, _inputs(handle, batch), sites=(site,))[site]
    return [values.reshape(-1, handle.d_ff).float() for values in layers]  # stays on the model's device
