"""Eval summaries and tables against independent references: scipy's percentile bootstrap, a plain
loop bootstrap, hand-computed toys (every expected number is worked out in a comment)."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import sys

import numpy as np
import pytest
from scipy import stats

from lsn_explorer.core.evals.results import RowInfo, SampleResult
from lsn_explorer.core.evals.summary import Cell, summarize
from lsn_explorer.core.evals.tables import _heat_grid, cells_json, columns, heat_map, render
from lsn_explorer.errors import LsnError

NONE = RowInfo("none", "none")


def grid(value: str, set_name: str = "lape") -> RowInfo:
    return RowInfo(f"{set_name}={value}", "grid", (f"{set_name}:{{lang}}={value}",), value, set_name)


def rand(base: RowInfo, seed: int) -> RowInfo:
    return RowInfo(f"{base.key}~r{seed}", "random", (), base.value, base.set_name, base.key, seed)


def results(lang: str, row: str, name: str, values) -> list[SampleResult]:
    return [SampleResult(lang, row, i, f"ex{i}", {name: float(v)}) for i, v in enumerate(values)]


def ppl_results(lang: str, row: str, nll, tokens) -> list[SampleResult]:
    pairs = enumerate(zip(nll, tokens))
    return [SampleResult(lang, row, i, f"l{i}", {"nll": float(a), "tokens": float(b)}) for i, (a, b) in pairs]


def by_row(cells: list[Cell]) -> dict[tuple[str, str], Cell]:
    return {(c.lang, c.row): c for c in cells}


# --- bootstrap against independent references ------------------------------------------------------


def test_score_ci_agrees_with_scipy_percentile_bootstrap():
    x = np.random.default_rng(7).uniform(0, 100, size=300)
    [cell] = summarize("xquad", [NONE], [SampleResult("en", "none", i, "", {"f1": v, "em": 0.0, "token_f1": 0.0, "token_em": 0.0})
                                          for i, v in enumerate(x)], resamples=20000)
    ref = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=20000, confidence_level=0.95,
                          random_state=np.random.default_rng(123)).confidence_interval
    assert cell.score == pytest.approx(x.mean())
    width = ref.high - ref.low  # ≈ 2·1.96·29/√300 ≈ 6.5; Monte Carlo error of each bound ≈ 0.05
    assert cell.low == pytest.approx(ref.low, abs=0.05 * width)
    assert cell.high == pytest.approx(ref.high, abs=0.05 * width)
    assert cell.low < cell.score < cell.high


def test_perplexity_ci_agrees_with_a_plain_loop_bootstrap():
    rng = np.random.default_rng(3)
    tokens = rng.integers(5, 40, size=120)
    nll = tokens * rng.uniform(1.5, 3.5, size=120)
    [cell] = summarize("ppl", [NONE], ppl_results("de", "none", nll, tokens), resamples=4000)
    # Reference: Python's own `random`, one resample at a time, corpus perplexity exp(Σnll/Σtokens).
    draw = random.Random(99)
    boot = []
    for _ in range(4000):
        picks = [draw.randrange(120) for _ in range(120)]
        boot.append(math.exp(sum(nll[i] for i in picks) / sum(tokens[i] for i in picks)))
    low, high = np.percentile(boot, [2.5, 97.5])
    assert cell.score == pytest.approx(math.exp(nll.sum() / tokens.sum()))
    assert cell.low == pytest.approx(low, abs=0.08 * (high - low))
    assert cell.high == pytest.approx(high, abs=0.08 * (high - low))


def test_paired_delta_ci_covers_the_true_difference_and_beats_unpaired():
    rng = np.random.default_rng(11)
    difficulty = rng.uniform(0, 100, size=400)  # shared by both rows: cancels only when paired
    base = difficulty + rng.normal(0, 2, size=400)
    row = difficulty - 5 + rng.normal(0, 2, size=400)  # true difference: −5
    p90 = grid("p90")
    samples = ([SampleResult("en", "none", i, "", {"f1": b, "em": 0.0}) for i, b in enumerate(base)]
               + [SampleResult("en", p90.key, i, "", {"f1": r, "em": 0.0}) for i, r in enumerate(row)])
    cells = by_row(summarize("mkqa", [NONE, p90], samples))
    c, n = cells[("en", p90.key)], cells[("en", "none")]
    assert c.delta == pytest.approx(row.mean() - base.mean())
    assert c.delta == pytest.approx(c.score - n.score)
    assert c.delta_low < -5 < c.delta_high
    # Unpaired reference: independent resamples of each row (what ignoring the pairing would give).
    draw = np.random.default_rng(5)
    unpaired = [row[draw.integers(0, 400, 400)].mean() - base[draw.integers(0, 400, 400)].mean() for _ in range(2000)]
    u_low, u_high = np.percentile(unpaired, [2.5, 97.5])
    assert (c.delta_high - c.delta_low) < 0.2 * (u_high - u_low)  # paired ≈ 2·1.96·2.8/20 ≈ 0.55 vs ≈ 8
    assert n.delta is None and n.delta_low is None


def test_paired_delta_uses_only_samples_both_rows_have():
    p50 = grid("p50")
    # none has samples 0..3 = [1, 1, 1, 1]; the row has 0..1 only = [0, 0]: on the common samples the
    # difference is −1 in every resample, so the CI is exactly [−1, −1]; the point Δ is 0 − 1 = −1.
    samples = results("fr", "none", "accuracy", [1, 1, 1, 1]) + results("fr", p50.key, "accuracy", [0, 0])
    c = by_row(summarize("xnli", [NONE, p50], samples))[("fr", p50.key)]
    assert (c.delta, c.delta_low, c.delta_high, c.n) == (-1.0, -1.0, -1.0, 2)


# --- reproducibility ---------------------------------------------------------------------------------


def _mixed_samples() -> tuple[list[RowInfo], list[SampleResult]]:
    rng = np.random.default_rng(1)
    rows = [NONE, grid("p50"), grid("p90")]
    samples = [s for lang in ("en", "zh") for r in rows for s in results(lang, r.key, "accuracy", rng.integers(0, 2, 60))]
    return rows, samples


def test_same_input_gives_identical_cells_and_order_does_not_matter():
    rows, samples = _mixed_samples()
    first = cells_json(summarize("xnli", rows, samples, seed=4, resamples=300))
    again = cells_json(summarize("xnli", rows, samples, seed=4, resamples=300))
    shuffled = list(samples)
    random.Random(0).shuffle(shuffled)
    reordered = {(c["lang"], c["row"]): c for c in cells_json(summarize("xnli", rows[::-1], shuffled, seed=4, resamples=300))}
    assert first == again
    assert all(reordered[(c["lang"], c["row"])] == c for c in first)
    # A cell's CI does not depend on which other cells are summarised with it.
    alone = summarize("xnli", rows[:2], [s for s in samples if s.row != rows[2].key and s.lang == "zh"], seed=4, resamples=300)
    assert alone[1].to_json() == next(c for c in first if c["lang"] == "zh" and c["row"] == rows[1].key)
    other_seed = {(c.lang, c.row): c.low for c in summarize("xnli", rows, samples, seed=5, resamples=300)}
    assert any(other_seed[(c["lang"], c["row"])] != c["low"] for c in first)


# --- aggregation by hand ---------------------------------------------------------------------------


def test_perplexity_is_token_weighted_and_single_sample_ci_is_the_score():
    # exp((2 + 4) / (1 + 3)) = exp(1.5); a mean of per-line perplexities would be (e² + e^(4/3))/2.
    [cell] = summarize("ppl", [NONE], ppl_results("en", "none", [2, 4], [1, 3]))
    assert cell.score == pytest.approx(math.exp(1.5)) and cell.extra["tokens"] == 4.0 and cell.metric == "perplexity"
    [one] = summarize("ppl", [NONE], ppl_results("en", "none", [3], [2]))
    assert one.low == one.high == one.score == pytest.approx(math.exp(1.5)) and one.n == 1


def test_random_seeds_are_averaged_per_sample_then_bootstrapped():
    p90 = grid("p90")
    r1, r2 = rand(p90, 1), rand(p90, 2)
    samples = (results("en", "none", "accuracy", [1, 1, 1]) + results("en", p90.key, "accuracy", [0, 0, 0])
               + results("en", r1.key, "accuracy", [1, 0, 1]) + results("en", r2.key, "accuracy", [1, 1, 0]))
    cells = summarize("xnli", [NONE, p90, r1, r2], samples)
    assert [(c.row, c.kind) for c in cells] == [("none", "none"), (p90.key, "grid"), (r1.key, "random_seed"),
                                                (r2.key, "random_seed"), (f"random:{p90.key}", "random")]
    agg = cells[-1]
    # per sample: (1+1)/2, (0+1)/2, (1+0)/2 = 1, .5, .5 → mean 2/3; Δ vs none (1) = −1/3
    assert agg.score == pytest.approx(2 / 3) and agg.delta == pytest.approx(-1 / 3)
    assert (agg.n, agg.extra["seeds"], agg.base, agg.seed, agg.value) == (3, 2, p90.key, None, "p90")
    # every resample of {1, .5, .5} has a mean in [.5, 1]; of the seed-1 row {1, 0, 1}, in [0, 1]
    assert 0.5 <= agg.low <= agg.score <= agg.high <= 1.0
    assert cells[2].seed == 1 and cells[2].score == pytest.approx(2 / 3)


def test_random_perplexity_pools_nll_and_tokens_over_seeds():
    r1, r2 = RowInfo("r1", "random", base="p", seed=1), RowInfo("r2", "random", base="p", seed=2)
    samples = ppl_results("en", "r1", [1, 3], [2, 2]) + ppl_results("en", "r2", [3, 1], [2, 2])
    agg = summarize("ppl", [r1, r2], samples)[-1]
    # Σnll over seeds = 1+3+3+1 = 8, Σtokens = 8 → exp(1); the split itself has 2+2 = 4 tokens
    assert agg.row == "random:p" and agg.score == pytest.approx(math.e) and agg.extra["tokens"] == 4.0
    assert agg.delta is None  # no "none" row in this evaluation


def test_mkqa_answered_subset_uses_the_none_rows_f1():
    p90 = grid("p90")
    samples = ([SampleResult("ja", "none", i, "", {"f1": f, "em": 0.0}) for i, f in enumerate([100, 50, 49.9, 0])]
               + [SampleResult("ja", p90.key, i, "", {"f1": f, "em": e})
                  for i, (f, e) in enumerate([[50, 0], [60, 100], [100, 100], [0, 0]])])
    cells = by_row(summarize("mkqa", [NONE, p90], samples))
    # answered (none F1 ≥ 50): samples 0 and 1 → the row's F1 there: (50 + 60)/2 = 55; none's: 75
    assert cells[("ja", p90.key)].extra == {"em": 50.0, "f1_answered50": 55.0, "n_answered50": 2}
    assert cells[("ja", "none")].extra["f1_answered50"] == 75.0


def test_edge_cases():
    assert summarize("xnli", [NONE], []) == []
    [c] = summarize("xnli", [grid("p50")], results("en", "lape=p50", "accuracy", [1, 0]))
    assert c.delta is None and c.delta_low is None and c.delta_high is None
    with pytest.raises(LsnError, match="does not list"):
        summarize("xnli", [NONE], results("en", "ghost", "accuracy", [1]))
    with pytest.raises(LsnError, match="unknown task"):
        summarize("xnlii", [NONE], [])


def test_five_thousand_samples_by_thirty_cells_is_fast():
    import time

    rows = [NONE] + [grid(f"p{v}") for v in range(5, 100, 10)]  # 11 rows × 3 languages = 33 cells
    rng = np.random.default_rng(0)
    samples = [s for lang in ("en", "de", "zh") for r in rows for s in results(lang, r.key, "accuracy", rng.integers(0, 2, 5000))]
    start = time.perf_counter()
    cells = summarize("xnli", rows, samples)
    assert len(cells) == 33 and time.perf_counter() - start < 30  # ≈ 3 s on 2 cores


# --- tables --------------------------------------------------------------------------------------


def _table_case() -> tuple[list[RowInfo], list[Cell]]:
    p50, p90 = grid("p50", "lape_1%"), grid("p90", "lape_1%")
    off = RowInfo("zero_top&1", "intervene", ("#12:{lang}=zero",))
    r1, r2 = rand(p90, 1), rand(p90, 2)
    rows = [r1, r2, NONE, p50, off, p90]  # deliberately out of order: columns() puts none first
    samples = []
    for lang, acc in (("en", [1, 1, 1, 0]), ("de", [1, 0, 1, 0])):
        samples += results(lang, "none", "accuracy", acc)
        samples += results(lang, p50.key, "accuracy", [1, 1, 0, 0])
        samples += results(lang, p90.key, "accuracy", [0, 0, 0, 0])
        samples += results(lang, off.key, "accuracy", [1, 0, 0, 0])
        samples += results(lang, r1.key, "accuracy", [1, 1, 1, 1]) + results(lang, r2.key, "accuracy", [1, 0, 1, 1])
    return rows, summarize("xnli", rows, samples, resamples=200)


def test_columns_order_and_headers():
    rows, _ = _table_case()
    assert columns(rows) == [("none", "none"), ("lape_1%=p50", "p50"), ("zero_top&1", "zero_top&1"), ("lape_1%=p90", "p90"),
                             ("random:lape_1%=p90", "random (p90)")]
    two_sets = columns([NONE, grid("p90", "a"), grid("p90", "b")])
    assert [h for _, h in two_sets] == ["none", "a p90", "b p90"]


def test_csv_has_every_cell_and_field():
    rows, cells = _table_case()
    parsed = list(csv.DictReader(io.StringIO(render(cells, rows, "csv"))))
    assert len(parsed) == len(cells) == 2 * 7
    for line, c in zip(parsed, cells):
        assert (line["lang"], line["row"], line["kind"], line["metric"]) == (c.lang, c.row, c.kind, "accuracy")
        assert int(line["n"]) == c.n
        assert (float(line["score"]), float(line["low"]), float(line["high"])) == (c.score, c.low, c.high)
        assert line["delta"] == ("" if c.delta is None else str(c.delta))
    assert parsed[-1]["row"] == "random:lape_1%=p90" and parsed[-1]["seeds"] == "2"


def test_text_and_markdown_show_score_halfwidth_and_delta():
    rows, cells = _table_case()
    en = by_row(cells)
    p50 = en[("en", "lape_1%=p50")]  # 2/4 right = 50.0 %; Δ vs none (3/4) = −25.0
    expected = f"50.0 ± {(p50.high - p50.low) * 50:.1f} Δ-25.0"
    text, md = render(cells, rows, "text"), render(cells, rows, "markdown")
    for table in (text, md):
        assert expected in table and "accuracy (%); set: lape_1%" in table and "r1" not in table.replace("random", "")
    header = text.splitlines()[1].split()
    assert header[:3] == ["lang", "none", "p50"] and text.splitlines()[2].startswith("en ")
    assert "| lang | none | p50 | zero_top&1 | p90 | random (p90) |" in md
    agg = en[("de", "random:lape_1%=p90")]  # per sample (1+1)/2, (1+0)/2, 1, 1 → 87.5 %; Δ vs none (50 %) = +37.5
    assert f"87.5 ± {(agg.high - agg.low) * 50:.1f} Δ+37.5" in md


def test_latex_escapes_and_booktabs():
    rows, cells = _table_case()
    tex = render(cells, rows, "latex")
    for needle in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrr}", r"set: lape\_1\%", r"accuracy (\%)",
                   r"zero\_top\&1", r"($\Delta$ -25.0)", r"random (p90) \\"):
        assert needle in tex
    assert "lape_1%" not in tex and " zero_top&1" not in tex
    assert len([line for line in tex.splitlines() if line.startswith(("en &", "de &"))]) == 2


def test_cells_json_round_trips():
    _, cells = _table_case()
    data = json.loads(json.dumps(cells_json(cells)))
    assert [Cell(**d) for d in data] == cells


def test_heat_map_writes_a_png_and_flips_perplexity():
    rows, cells = _table_case()
    _, headers, shown, goodness = _heat_grid(cells, rows)
    assert "none" not in headers and shown[0, 0] == pytest.approx(-25.0) and goodness[0, 0] == shown[0, 0]
    p50 = grid("p50")
    ppl = summarize("ppl", [NONE, p50], ppl_results("en", "none", [1], [1]) + ppl_results("en", p50.key, [2], [1]))
    _, _, shown_ppl, goodness_ppl = _heat_grid(ppl, [NONE, p50])
    # perplexity rose e → e² (worse): Δ > 0 but the colour value is negative, like an accuracy drop
    assert shown_ppl[0, 0] == pytest.approx(math.e**2 - math.e) and goodness_ppl[0, 0] == pytest.approx(-shown_ppl[0, 0])


def test_heat_map_png(tmp_path):
    rows, cells = _table_case()
    out = heat_map(cells, rows, tmp_path / "grid.png", title="XNLI")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000


def test_heat_map_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    rows, cells = _table_case()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(LsnError) as err:
        heat_map(cells, rows, tmp_path / "x.png")
    assert "matplotlib" in err.value.message and err.value.hint == "pip install 'lsn-explorer[plot]'"
    assert not (tmp_path / "x.png").exists()
