"""Interventions against the plain-hook reference (tests/intervention_reference.py), on the demo
model in fp32: identical logits in forward passes and identical per-step logits and tokens in
generation, for every value × site × position, plus the spec syntax and its errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from lsn_explorer.core.interventions.resolve import resolve
from lsn_explorer.core.interventions.spec import Intervention, InterventionError, parse_intervention
from lsn_explorer.core.model.backend import forward_logits, generate_rows
from lsn_explorer.core.stats.runs import StatsSettings, compute_stats, load_stats
from lsn_explorer.core.vocab import POSITIONS, WRITE_SITES
from lsn_explorer.session.store import Session
from tests.intervention_reference import HookedInterventions, RefIntervention

VALUE_SPECS = ("zero", "mean", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "0.75", "x1.5")


@pytest.fixture(scope="module")
def session(demo, tmp_path_factory):
    from lsn_explorer.core.data.corpora import corpus_file

    session = Session.open("iv", tmp_path_factory.mktemp("sessions"))
    corpora = {"zh": corpus_file("zh")}
    for site, mode in (("s", "consistent"), ("a", "consistent"), ("g", "faithful")):
        settings = StatsSettings(site=site, mode=mode, window=128, max_tokens=2048).resolved(demo)
        compute_stats(session, demo, corpora, settings)
    return session


@pytest.fixture(scope="module")
def pairs(demo):
    g = torch.Generator().manual_seed(0)
    layers = torch.randint(0, demo.n_layers, (48,), generator=g)
    index = torch.randperm(demo.d_ff, generator=g)[:48]
    return torch.stack([layers, index], 1)


def listed(pairs: torch.Tensor) -> str:
    return ",".join(f"{l}.{i}" for l, i in pairs.tolist())


def reference(iv: Intervention, pairs: torch.Tensor, session: Session) -> RefIntervention:
    if iv.value == "scale":
        return RefIntervention(pairs, None, iv.amount, iv.site, iv.positions)
    if iv.value in ("zero", "const"):
        return RefIntervention(pairs, torch.full((len(pairs),), iv.amount), None, iv.site, iv.positions)
    site, mode = ("g", "faithful") if iv.mode == "faithful" else (iv.site, "consistent")
    table = load_stats(session, "zh", site=site, mode=mode).values[iv.value]
    return RefIntervention(pairs, table[pairs[:, 0], pairs[:, 1]], None, iv.site, iv.positions)


def batch(demo, texts):
    tok = demo.tokenizer
    tok.padding_side = "right"
    try:
        return tok(texts, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = "left"


TEXTS = ["今天的天气很好，我们去公园散步。", "他在图书馆读书"]


@pytest.mark.parametrize("value,site,positions", list(itertools.product(VALUE_SPECS, WRITE_SITES, POSITIONS)))
def test_forward_matches_hooks(demo, session, pairs, value, site, positions):
    iv = parse_intervention(f"{listed(pairs)}:zh={value}@{positions}/{site}")
    plan = resolve([iv], demo, session)
    inputs = batch(demo, TEXTS)  # right-padded rows of different lengths: "last" differs per row
    got = forward_logits(demo, dict(inputs), plan)
    last = inputs["attention_mask"].sum(1) - 1
    with HookedInterventions(demo.model, demo.arch, [reference(iv, pairs, session)], last=last):
        with torch.no_grad():
            want = demo.model(**inputs).logits
    assert torch.equal(got, want)
    plain = forward_logits(demo, dict(inputs))
    if positions == "generated":  # nothing is generated in a forward pass over given text
        assert torch.equal(got, plain)
    elif value != "x1.5" or positions != "last":
        assert not torch.equal(got, plain)  # the intervention did something


class Recorder:
    """A logits processor that keeps every step's scores (and changes nothing)."""

    def __init__(self):
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids, scores):
        self.steps.append(scores.clone())
        return scores


def _generate(demo, prompt, plans, n=6):
    from transformers import LogitsProcessorList

    rec = Recorder()
    inputs = demo.tokenizer(prompt, return_tensors="pt")
    ids = generate_rows(demo, dict(inputs), plans, max_new_tokens=n, do_sample=False,
                        pad_token_id=demo.tokenizer.pad_token_id, logits_processor=LogitsProcessorList([rec]))
    return ids, torch.stack(rec.steps, 1)  # [rows, steps, vocab]


def _reference_generate(demo, prompt, refs, n=6, rows=1):
    """Plain HF generation with reference hooks; with rows=2 the prompt is batched twice and only
    the second row is edited — the same batched computation as the engine's compare run."""
    from transformers import LogitsProcessorList

    rec = Recorder()
    inputs = demo.tokenizer([prompt] * rows, return_tensors="pt")
    row = None if rows == 1 else rows - 1
    with HookedInterventions(demo.model, demo.arch, refs, generating=True, row=row), torch.no_grad():
        ids = demo.model.generate(**inputs, max_new_tokens=n, do_sample=False, pad_token_id=demo.tokenizer.pad_token_id,
                                  logits_processor=LogitsProcessorList([rec]))
    return ids, torch.stack(rec.steps, 1)


@pytest.mark.parametrize("value,site,positions", list(itertools.product(VALUE_SPECS, WRITE_SITES, POSITIONS)))
def test_generation_matches_hooks(demo, session, pairs, value, site, positions):
    iv = parse_intervention(f"{listed(pairs)}:zh={value}@{positions}/{site}")
    plan = resolve([iv], demo, session)
    prompt = "我们明天一起去"
    ids, scores = _generate(demo, prompt, [None, plan])
    ref_ids, ref_scores = _reference_generate(demo, prompt, [reference(iv, pairs, session)], rows=2)
    assert torch.equal(ids, ref_ids)
    assert torch.equal(scores, ref_scores)


def test_several_interventions_compose_like_sequential_hooks(demo, session, pairs):
    a, b = pairs[:32], pairs[16:]  # overlapping halves
    specs = [f"{listed(a)}:zh=p90", f"{listed(b)}:zh=zero@prompt", f"{listed(a)}:zh=x0.5@last",
             f"{listed(b)}:zh=mean@generated/a", f"{listed(a)}:zh=0.3/a"]
    ivs = [parse_intervention(s) for s in specs]
    refs = [reference(iv, pairs[:32] if iv.neurons == tuple(map(tuple, a.tolist())) else b, session) for iv in ivs]
    plan = resolve(ivs, demo, session)
    inputs = batch(demo, TEXTS)
    last = inputs["attention_mask"].sum(1) - 1
    with HookedInterventions(demo.model, demo.arch, refs, last=last), torch.no_grad():
        want = demo.model(**inputs).logits
    assert torch.equal(forward_logits(demo, dict(inputs), plan), want)
    ids, scores = _generate(demo, "我们明天一起去", [plan])
    ref_ids, ref_scores = _reference_generate(demo, "我们明天一起去", refs)
    assert torch.equal(ids, ref_ids) and torch.equal(scores, ref_scores)


def test_faithful_writes_g_statistics_into_s(demo, session, pairs):
    iv = parse_intervention(f"{listed(pairs)}:zh=p25/faithful")
    plan = resolve([iv], demo, session)
    g_faithful = load_stats(session, "zh", site="g", mode="faithful").values["p25"]
    edit = plan.edits[0]
    assert torch.equal(edit.add, g_faithful[edit.layer, edit.index].float())
    assert sorted(zip(edit.layer.tolist(), edit.index.tolist())) == sorted(map(tuple, pairs.tolist()))
    inputs = batch(demo, TEXTS)
    with HookedInterventions(demo.model, demo.arch, [reference(iv, pairs, session)]), torch.no_grad():
        want = demo.model(**inputs).logits
    assert torch.equal(forward_logits(demo, dict(inputs), plan), want)


@pytest.mark.parametrize("spec", ["lape:zh=p90", "type1:ja=zero@prompt", "lape:hi=mean/a", "3.17,5.200=zero@last",
                                  "lape:zh=x0.5", "lape:zh=1.5", "#12:vi=p5/faithful", "random:zh=-0.25@generated"])
def test_spec_round_trip(spec):
    iv = parse_intervention(spec)
    assert iv.spec == spec
    assert Intervention.from_json(iv.to_json()) == iv


@pytest.mark.parametrize("spec,part", [
    ("lape:zh", "SOURCE[:LANG]=VALUE"), ("lape:zh=p91", "value 'p91'"), ("lape:zh=zero@first", "positions 'first'"),
    ("lape:zh=zero/b", "modifier 'b'"), ("lape:zh=p90/a/faithful", "faithful"), ("lape=mean", "add :LANG"),
    ("la pe:zh=zero", "source 'la pe'"), ("lape:=zero", "empty language"),
])
def test_malformed_specs_name_the_part(spec, part):
    with pytest.raises(InterventionError) as err:
        parse_intervention(spec)
    assert part in err.value.message and "syntax:" in err.value.hint


def test_unknown_language_suggests():
    from lsn_explorer.errors import LanguageError

    with pytest.raises(LanguageError):
        parse_intervention("lape:zhh=zero")


def test_resolve_errors(demo, session):
    from lsn_explorer.core.neurons.neuron_set import NeuronSet
    from lsn_explorer.core.stats.runs import StatsMissing
    from lsn_explorer.errors import LsnError

    with pytest.raises(LsnError, match="beyond|out of range|d_ff"):
        resolve([parse_intervention(f"2.{demo.d_ff}=zero")], demo)
    with pytest.raises(StatsMissing, match="hi") as err:  # a percentile before statistics exist
        resolve([parse_intervention("1.5:hi=p90")], demo, session)
    assert "lsn-explorer stats" in err.value.hint
    with pytest.raises(LsnError, match="no neuron set 'lape'"):
        resolve([parse_intervention("lape:zh=zero")], demo, session)
    neuron_set = NeuronSet("manual", {}, demo.n_layers, demo.d_ff, {"zh": [[0, 1], [2, 3]], "en": []})
    session.add("neuron_set", "handmade", {"set": neuron_set.to_json()}, {"method": "manual"})
    with pytest.raises(InterventionError, match="no neurons for hi"):
        resolve([parse_intervention("handmade:hi=zero")], demo, session)
    with pytest.raises(InterventionError, match="selects no neurons for en"):
        resolve([parse_intervention("handmade:en=zero")], demo, session)
    with pytest.raises(InterventionError, match="several languages"):
        resolve([parse_intervention("handmade=zero")], demo, session)
    plan = resolve([parse_intervention("handmade:zh=zero")], demo, session)
    assert plan.neuron_count() == 2
