"""Issue-3 science on the demo model: statistics accuracy and language-specific LAPE sets."""

from __future__ import annotations

import pytest
import torch
from tests_langs import CORPUS_LANGS, DISTINCT_SCRIPT_LANGS

from lsn_explorer.core.data.corpora import corpus_file, read_lines
from lsn_explorer.core.model.backend import read_sites
from lsn_explorer.core.neurons.runs import identify, specificity
from lsn_explorer.core.neurons.specificity import jaccard
from lsn_explorer.core.stats.collect import collect_stats, plan_batches
from lsn_explorer.core.stats.runs import StatsSettings, compute_stats
from lsn_explorer.core.vocab import PERCENTILES
from lsn_explorer.session.store import Session

# Statistics of every demo language over its first 4000 tokens (site s, consistent mode).
TOKENS = 4000


@pytest.fixture(scope="module")
def session(demo, tmp_path_factory):
    s = Session.open("science", tmp_path_factory.mktemp("sessions"))
    compute_stats(s, demo, {lang: corpus_file(lang) for lang in CORPUS_LANGS}, StatsSettings(max_tokens=TOKENS))
    yield s
    s.close()


def test_percentiles_within_half_a_rank_of_exact_quantiles(demo):
    plan = plan_batches(demo, read_lines(corpus_file("zh")), window=128, batch_size=4)
    stats = collect_stats(demo, plan, site="s").finalize()
    rows = []
    for batch in plan.batches:
        sites = read_sites(demo, {"input_ids": batch, "attention_mask": torch.ones_like(batch)}, sites=("s",))
        rows.append(torch.stack([t.reshape(-1, demo.d_ff) for t in sites["s"]]))
    x = torch.cat(rows, 1)  # [layer, tokens, d_ff]
    qs = torch.tensor([p / 100 for p in PERCENTILES])
    for layer in range(demo.n_layers):
        lo = torch.quantile(x[layer], (qs - 0.005).clamp(min=0), dim=0)
        hi = torch.quantile(x[layer], (qs + 0.005).clamp(max=1), dim=0)
        est = torch.stack([stats[f"p{p}"][layer] for p in PERCENTILES])
        inside = (est >= lo - 1e-6) & (est <= hi + 1e-6)
        assert inside.all(), (layer, (~inside).nonzero()[:5].tolist())


def test_lape_sets_of_distinct_scripts_are_non_empty_and_mostly_disjoint(session):
    # top_rate 0.05 (Tang et al.'s first release): 1 % of 4608 neurons is 46 in all, a handful per
    # language. zh and ja share Han characters and so share the most neurons (Jaccard ≈ 0.45).
    result, _ = identify(session, "lape", params={"top_rate": 0.05})
    for lang in DISTINCT_SCRIPT_LANGS:
        assert len(result.neurons[lang]) > 0, lang
    for i, a in enumerate(DISTINCT_SCRIPT_LANGS):
        for b in DISTINCT_SCRIPT_LANGS[i + 1:]:
            assert jaccard(result.as_set(a), result.as_set(b)) < 0.5, (a, b)


def test_lape_neurons_are_language_specific_by_eta_squared(session):
    result, _ = identify(session, "lape", params={"top_rate": 0.05}, name="lape5")
    rows = specificity(session, result)
    random, _ = identify(session, "random", reference="lape5")
    random_rows = specificity(session, random)
    for lang in DISTINCT_SCRIPT_LANGS:
        assert rows[lang]["mean_eta2"] > random_rows[lang]["mean_eta2"], lang


def test_resumed_run_skips_finished_languages(session, demo):
    again = compute_stats(session, demo, {"zh": corpus_file("zh")}, StatsSettings(max_tokens=TOKENS))
    assert again[0]["skipped"]
    other_site = compute_stats(session, demo, {"zh": corpus_file("zh")}, StatsSettings(site="g", max_tokens=600))
    assert not other_site[0]["skipped"] and other_site[0]["tokens"] == 600


# -- issue 4: interventions on the demo model -----------------------------------------------------
LATIN_LANGS = [lang for lang in CORPUS_LANGS if lang not in DISTINCT_SCRIPT_LANGS]


@pytest.fixture(scope="module")
def lape5(session):
    # site and mode named: test_resumed_run_skips_finished_languages adds g statistics for zh
    identify(session, "lape", params={"top_rate": 0.05, "site": "s", "mode": "consistent"}, name="lape5")
    return "lape5"


# top_rate 0.05, 4000-token statistics. Measured on the current demo model: every distinct-script
# row is diagonal-dominant (zh 2.15 % vs 0.43 % on ur; ja, with 2 neurons, has the thinnest margin,
# 0.06 % vs 0.01 %); of the Latin rows es vi nl it are, fr and id are not, and en has no neurons at 0.05. With
# the old 360-line corpus zh, ja and ko were not, because the model had not learned them.
def test_ppxc_of_lape_zero_is_diagonal_dominant(demo, session, lape5):
    from lsn_explorer.core.interventions.spec import parse_intervention
    from lsn_explorer.core.tasks.perplexity import ppxc

    matrix = ppxc(demo, session, CORPUS_LANGS, parse_intervention(f"{lape5}:en=zero"))
    failing = [i for i in DISTINCT_SCRIPT_LANGS if not matrix.diagonal_dominant(i)]
    latin_ok = [i for i in LATIN_LANGS if i in matrix.rows and matrix.diagonal_dominant(i)]
    assert not failing, {i: max(matrix.cols, key=lambda j: matrix.relative(i, j)) for i in failing}
    assert len(latin_ok) >= len(LATIN_LANGS) / 2


def test_zeroing_hindi_neurons_changes_hindi_not_english(demo, session, lape5):
    from lsn_explorer.core.data.corpora import load_parallel
    from lsn_explorer.core.generate import generate
    from lsn_explorer.core.interventions.resolve import resolve
    from lsn_explorer.core.interventions.spec import parse_intervention
    from lsn_explorer.demo.build import prompt_from

    plan = resolve([parse_intervention(f"{lape5}:hi=zero")], demo, session)
    heldout = load_parallel(["hi", "en"]).split("heldout")
    changed = {"hi": 0, "en": 0}
    for k in range(5):
        for lang in changed:
            rows = generate(demo, prompt_from(heldout.lines[lang][k]), [None, plan], max_new_tokens=16).rows
            base, after = rows[0].token_ids, rows[1].token_ids
            changed[lang] += sum(a != b for a, b in zip(base, after)) + abs(len(base) - len(after))
    # Measured on the current demo model: 52 of 80 Hindi tokens differ, 0 of 80 English ones.
    assert changed["hi"] >= 0.2 * 80  # visibly different Hindi continuations
    assert changed["en"] <= 0.1 * 80  # English unchanged or barely changed
