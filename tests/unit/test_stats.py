"""Streaming statistics: shard merges equal one pass; estimates match exact computations."""

from __future__ import annotations

import pytest
import torch

from lsn_explorer.core.model.backend import read_sites
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.stats.accumulator import HistogramGrid, StatsAccumulator
from lsn_explorer.core.stats.collect import collect_stats, plan_batches
from lsn_explorer.core.vocab import PERCENTILES

_WORDS = "the quick brown fox jumps over lazy dogs and cats sleep in warm sun by a river".split()
# Varied pseudo-random lines: repeated identical contexts would give tied activations.
TEXT = [" ".join(_WORDS[(i * 7 + j * j * 3 + i * j) % len(_WORDS)] for j in range(4 + i % 9)) + "." for i in range(90)]


@pytest.fixture(scope="module")
def handle(tiny_checkpoints):
    return load_model(tiny_checkpoints["llama"])


def exact_values(handle, plan, site):
    """All activations of the plan's batches, read with an ordinary trace: [layer, tokens, d_ff]."""
    rows = []
    for batch in plan.batches:
        got = read_sites(handle, {"input_ids": batch, "attention_mask": torch.ones_like(batch)}, sites=(site,))[site]
        rows.append(torch.stack([t.reshape(-1, handle.d_ff) for t in got]))
    return torch.cat(rows, 1)


@pytest.mark.parametrize("mode", ["consistent", "faithful"])
def test_shards_merge_to_the_single_pass(handle, mode):
    plan = plan_batches(handle, TEXT, window=16, batch_size=2)
    assert len(plan.batches) >= 6
    whole = collect_stats(handle, plan, site="s", mode=mode)
    parts = [collect_stats(handle, plan, site="s", mode=mode, shard=(i, 3)) for i in range(3)]
    merged = StatsAccumulator.from_state(parts[0].state())
    for part in parts[1:]:
        merged.merge(StatsAccumulator.from_state(part.state()))
    assert merged.tokens == whole.tokens == plan.total_tokens
    for name in ("positive", "sum_fixed", "minimum", "maximum", "hist"):
        assert torch.equal(getattr(merged, name), getattr(whole, name)), name
    assert torch.allclose(merged.sumsq, whole.sumsq, rtol=1e-12)
    assert torch.allclose(merged.batch_sums, whole.batch_sums, rtol=1e-12)
    for name, value in whole.finalize(mode).items():
        assert torch.allclose(merged.finalize(mode)[name], value, rtol=1e-6, atol=1e-7), name


def test_consistent_statistics_match_exact_values(handle):
    plan = plan_batches(handle, TEXT, window=16, batch_size=2)
    acc = collect_stats(handle, plan, site="a")
    stats = acc.finalize()
    x = exact_values(handle, plan, "a")  # [layer, tokens, d_ff]
    assert acc.tokens == x.shape[1]
    assert torch.equal(stats["prob"], (x > 0).float().mean(1))
    assert torch.allclose(stats["mean"], x.double().mean(1).float(), atol=1e-6)
    qs = torch.tensor([p / 100 for p in PERCENTILES])
    for layer in range(handle.n_layers):
        lo = torch.quantile(x[layer], (qs - 0.005).clamp(min=0), dim=0)
        hi = torch.quantile(x[layer], (qs + 0.005).clamp(max=1), dim=0)
        est = torch.stack([stats[f"p{p}"][layer] for p in PERCENTILES])
        assert ((est >= lo - 1e-6) & (est <= hi + 1e-6)).all(), layer
    above = (x > stats["p90"].unsqueeze(1)).float().mean(1)
    assert (stats["act90"] - above).abs().max() < 0.01


def test_faithful_mode_averages_per_batch_quantiles_of_g(handle):
    plan = plan_batches(handle, TEXT, window=16, batch_size=2)
    acc = collect_stats(handle, plan, site="s", mode="faithful")  # faithful reads g regardless
    stats = acc.finalize("faithful")
    per_batch = []
    for batch in plan.batches:
        g = read_sites(handle, {"input_ids": batch, "attention_mask": torch.ones_like(batch)}, sites=("g",))["g"]
        per_batch.append(torch.stack([torch.quantile(t.reshape(-1, handle.d_ff), 0.9, dim=0) for t in g]))
    assert torch.allclose(stats["p90"], torch.stack(per_batch).mean(0), atol=1e-5)


def test_percentiles_hold_under_drift_from_the_calibration_sample():
    g = torch.Generator().manual_seed(0)
    calib = [torch.randn(2048, 6, generator=g)]
    acc = StatsAccumulator(HistogramGrid.calibrate(calib))
    drifted = 2.0 + 1.5 * torch.randn(20000, 6, generator=g)
    acc.update(0, drifted)
    acc.end_batch(len(drifted))
    stats = acc.finalize()
    for p in PERCENTILES:
        lo = torch.quantile(drifted, max(p / 100 - 0.005, 0), dim=0)
        hi = torch.quantile(drifted, p / 100 + 0.005, dim=0)
        assert ((stats[f"p{p}"][0] >= lo) & (stats[f"p{p}"][0] <= hi)).all(), p


def test_plan_windows_have_no_padding_and_keep_every_token(handle):
    plan = plan_batches(handle, TEXT, window=16, batch_size=3)
    ids = handle.tokenizer("\n".join(TEXT), return_tensors="pt")["input_ids"][0]
    assert torch.equal(torch.cat([b.flatten() for b in plan.batches]), ids[: plan.total_tokens])
    assert plan.total_tokens >= len(ids) - 1
    assert all(b.shape[1] == 16 for b in plan.batches[:-1])
    short = plan_batches(handle, ["tiny"], window=512, batch_size=4)
    assert short.short and short.total_tokens == 4
