"""Latent states on the demo model against plain transformers forwards and reference hooks, the
session cache, which text each condition's interventions act on, and the centroid curve."""

from __future__ import annotations

import pytest
import torch
from intervention_reference import HookedInterventions, RefIntervention

from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.core.latent import states as states_module
from lsn_explorer.core.latent.analyses import analyse, gather, load_texts
from lsn_explorer.core.latent.conditions import build_conditions
from lsn_explorer.core.latent.states import STATES_KIND, text_states
from lsn_explorer.core.model.architectures import resolve as resolve_path
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.session.store import Session

NON_LATIN = ("ja", "zh", "hi", "ta")


def _set(handle, seed=0, per_lang=24, layers=(0, 1, 2, 3)):
    """A hand-made transfer-style set: ja and zh neurons in the first layers, none for English."""
    g = torch.Generator().manual_seed(seed)
    neurons = {}
    for lang in ("ja", "zh"):
        layer = torch.tensor(layers)[torch.randint(0, len(layers), (per_lang,), generator=g)]
        index = torch.randperm(handle.d_ff, generator=g)[:per_lang]
        neurons[lang] = torch.stack([layer, index], -1)
    return NeuronSet("manual", {}, handle.n_layers, handle.d_ff, neurons)


def _session(tmp_path, handle):
    session = Session.open("lat", tmp_path)
    session.add("neuron_set", "t1", {"set": _set(handle).to_json()}, {"model": handle.provenance()})
    return session


def _reference_states(handle, sentence, interventions=()):
    """Each depth's last-token state from a plain forward of the sentence alone: hidden_states
    0 … L−1 from transformers, and the last decoder layer's raw output from a forward hook (the
    last hidden_states entry is after the final norm)."""
    blocks = resolve_path(handle.model, handle.arch.layers)
    caught = {}
    hook = blocks[-1].register_forward_hook(lambda _m, _i, out: caught.setdefault("h", out[0] if isinstance(out, tuple) else out))
    try:
        with torch.no_grad(), HookedInterventions(handle.model, handle.arch, list(interventions)):
            out = handle.model(**handle.tokenizer([sentence], return_tensors="pt"), output_hidden_states=True)
    finally:
        hook.remove()
    depths = [h[0, -1] for h in out.hidden_states[:-1]] + [caught["h"][0, -1]]
    return torch.stack(depths).float()


def test_states_equal_plain_forwards_in_any_batch(demo):
    sentences = load_texts(["ja"], lines=7).lines["ja"] + ["Hi.", "A rather longer English sentence to pad the others."]
    got = text_states(demo, sentences, batch_size=4)
    assert got.shape == (len(sentences), demo.n_layers + 1, demo.model.config.hidden_size)
    for i, sentence in enumerate(sentences):
        torch.testing.assert_close(got[i], _reference_states(demo, sentence), rtol=1e-4, atol=1e-4)


def test_last_token_deactivation_equals_reference_hooks(demo, tmp_path):
    session = _session(tmp_path, demo)
    sentences = load_texts(["ja"], lines=5).lines["ja"]
    plan = resolve([parse_intervention("t1:ja=zero@last")], demo, session)
    got = text_states(demo, sentences, plan, batch_size=2)
    pairs = _set(demo).neurons["ja"]
    reference = RefIntervention(pairs, torch.zeros(len(pairs)), None, "s", "last")
    plain = text_states(demo, sentences)
    for i, sentence in enumerate(sentences):
        torch.testing.assert_close(got[i], _reference_states(demo, sentence, [reference]), rtol=1e-4, atol=1e-4)
    # The writes matter: from the first written layer on, states move; the embeddings do not.
    assert torch.equal(got[:, 0], plain[:, 0])
    assert (got[:, 1:] - plain[:, 1:]).abs().max() > 1e-2


def test_gather_caches_states_and_applies_interventions_by_language(demo, tmp_path, monkeypatch):
    session = _session(tmp_path, demo)
    texts = load_texts(["en", "ja", "zh"], lines=10)
    conditions = build_conditions(["t1:{lang}=zero@last"], True, session, seed=3)
    assert [c.key for c in conditions] == ["none", "iv1", "random1"]
    assert conditions[1].specs == ("#1:{lang}=zero@last",)  # pinned to the record
    first = gather(demo, session, texts, conditions, batch_size=4)
    assert first.applied["iv1"] == {"en": [], "ja": ["#1:ja=zero@last"], "zh": ["#1:zh=zero@last"]}
    # English has no neurons in the set: read as it is, under every condition.
    assert torch.equal(first.own[("iv1", "en")], first.own[("none", "en")])
    assert torch.equal(first.english[("random1", "ja")], first.own[("none", "en")])
    for lang in ("ja", "zh"):
        assert not torch.equal(first.own[("iv1", lang)], first.own[("none", lang)])
        assert not torch.equal(first.own[("random1", lang)], first.own[("iv1", lang)])
    # One stored tensor per (text, plan): en, ja, zh plain; ja, zh intervened; ja, zh random.
    assert len(session.records(STATES_KIND)) == 7

    def no_model(*_a, **_k):
        raise AssertionError("the model ran although the states were cached")

    monkeypatch.setattr(states_module, "text_states", no_model)
    again = gather(demo, session, texts, conditions)
    for key, tensor in first.own.items():
        assert torch.equal(again.own[key], tensor)
    assert len(session.records(STATES_KIND)) == 7
    # Another random seed, another draw: the cache must not answer it.
    with pytest.raises(AssertionError, match="cached"):
        gather(demo, session, texts, build_conditions(["t1:{lang}=zero@last"], True, session, seed=4))


def test_random_condition_draws_matched_neurons(demo, tmp_path):
    from lsn_explorer.core.latent.conditions import Planner

    session = _session(tmp_path, demo)
    random = build_conditions(["t1:ja=zero@last"], True, session, seed=1)[2]
    planner = Planner(demo, session)
    plan, key = planner.plan(random, "ja")
    assert key.startswith("random(seed=1)")
    drawn = torch.cat([torch.stack([e.layer, e.index], -1) for e in plan.edits])
    reference = _set(demo).neurons["ja"]
    assert torch.equal(torch.bincount(drawn[:, 0], minlength=demo.n_layers),
                       torch.bincount(reference[:, 0], minlength=demo.n_layers))
    assert not {tuple(p) for p in drawn.tolist()} & {tuple(p) for p in reference.tolist()}
    assert planner.plan(random, "en") == (None, "none")  # the spec names ja: English is read as it is


def test_centroid_similarity_to_english_rises_then_falls_for_non_latin_scripts(demo):
    """What the demo model shows (measured, see the issue-15 note): for non-Latin scripts the
    English–L2 centroid cosine is low on the embeddings, peaks in the first/middle layers and
    drops at the last layer."""
    texts = load_texts(["en", *NON_LATIN], lines=120)
    result = analyse(gather(demo, None, texts, build_conditions([], False, None)), "centroids")
    for lang in NON_LATIN:
        curve = result["results"]["none"]["en"][lang]
        peak = max(curve[1:-1])
        assert peak > curve[0] + 0.2 and peak > curve[-1] + 0.02, (lang, curve)


def test_texts_from_flores_and_tatoeba_pairs(shared_data):
    flores = load_texts(["ja", "hi"], shared_data / "flores200", lines=50)
    english = (shared_data / "flores200" / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()
    assert flores.lines["en"] == [line.strip() for line in english[:50]]
    assert flores.pairs["ja"] == flores.pairs["hi"] == flores.lines["en"] and len(flores.lines["hi"]) == 50
    tatoeba = load_texts(["ja"], shared_data / "tatoeba", lines=30)
    pair = (shared_data / "tatoeba" / "tatoeba.jpn-eng.eng").read_text(encoding="utf-8").splitlines()
    assert tatoeba.pairs["ja"] == [line.strip() for line in pair[:30]] and len(tatoeba.lines["ja"]) == 30


def test_each_analysis_on_demo_states_matches_numpy_and_scikit_learn(demo):
    """The analyses' numbers on real demo-model states, recomputed from the same states with
    numpy and scikit-learn (no code shared with core/latent/measures.py)."""
    import numpy as np

    decomposition = pytest.importorskip("sklearn.decomposition")
    neighbors = pytest.importorskip("sklearn.neighbors")
    states = gather(demo, None, load_texts(["en", "ja", "zh"], lines=40), build_conditions([], False, None))
    own = {lang: states.own[("none", lang)].double().numpy() for lang in ("en", "ja", "zh")}
    depths = states.depths

    def cos(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    centroids = analyse(states, "centroids", layer=2)["results"]["none"]
    for depth in range(depths):
        reference = cos(own["en"][:, depth].mean(0), own["ja"][:, depth].mean(0))
        assert centroids["en"]["ja"][depth] == pytest.approx(reference, abs=1e-9)
    assert centroids["matrix"][1][2] == pytest.approx(cos(own["ja"][:, 2].mean(0), own["zh"][:, 2].mean(0)), abs=1e-9)

    pca = analyse(states, "pca", layer=3)["results"]["none"]
    pooled = np.concatenate([own[lang][:, 3] for lang in ("en", "ja", "zh")])
    reference = decomposition.PCA(n_components=2, svd_solver="full").fit(pooled)
    ours = np.concatenate([np.array(pca["coords"][lang]) for lang in ("en", "ja", "zh")])
    theirs = reference.transform(pooled)
    for axis in range(2):
        sign = np.sign(ours[:, axis] @ theirs[:, axis])
        np.testing.assert_allclose(ours[:, axis], sign * theirs[:, axis], atol=1e-6)
    np.testing.assert_allclose(pca["explained"], reference.explained_variance_ratio_, atol=1e-9)

    cevr = analyse(states, "cevr")["results"]["none"]
    for depth in range(depths):
        values = np.linalg.svd(own["zh"][:, depth], compute_uv=False)
        share = np.cumsum(values**2) / np.sum(values**2)
        for threshold in ("0.9", "0.95", "0.99"):
            assert cevr["zh"][threshold][depth] == int(np.searchsorted(share, float(threshold) - 1e-12) + 1)

    k = 5
    result = analyse(states, "mknn", k=k)
    en_ja = states.english[("none", "ja")].double().numpy()
    for depth in range(1, depths):  # depth 0: every sentence ends in the same token, all tied
        assert result["tied"]["none"]["ja"][depth] == 0.0
        sets = []
        for x in (en_ja[:, depth], own["ja"][:, depth]):
            _, index = neighbors.NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x).kneighbors(x)
            sets.append([set(row[row != i][:k].tolist()) for i, row in enumerate(index)])
        expected = np.mean([len(sets[0][i] & sets[1][i]) / k for i in range(len(en_ja))])
        assert result["results"]["none"]["ja"][depth] == pytest.approx(expected, abs=1e-12)

    parallel = analyse(states, "parallel")["results"]["none"]["zh"]
    en_zh = states.english[("none", "zh")].double().numpy()
    n = len(en_zh)
    for depth in (1, depths - 1):
        same = np.mean([cos(en_zh[i, depth], own["zh"][i, depth]) for i in range(n)])
        other = np.mean([cos(en_zh[i, depth], own["zh"][j, depth]) for i in range(n) for j in range(n) if i != j])
        assert parallel["parallel"][depth] == pytest.approx(same, abs=1e-9)
        assert parallel["nonparallel"][depth] == pytest.approx(other, abs=1e-9)
