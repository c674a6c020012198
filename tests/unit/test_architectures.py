"""Every family in the architecture table: the three sites read through nnsight equal plain hooks."""

from __future__ import annotations

import pytest
import torch
from tiny import FAMILY_CONFIGS, hook_reference

from lsn_explorer.core.model.architectures import ARCHITECTURES, architecture_for
from lsn_explorer.core.model.backend import read_sites
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.errors import SiteError, UnsupportedArchitecture


def test_table_covers_the_required_families():
    families = {a.family for a in ARCHITECTURES}
    assert {"Llama", "Mistral", "Qwen2", "Qwen3", "Gemma2", "Gemma3 (text)", "Phi3", "GPT-2"} <= families
    assert set(FAMILY_CONFIGS) == {t for a in ARCHITECTURES for t in a.model_types}


@pytest.mark.parametrize("family", sorted(FAMILY_CONFIGS))
def test_sites_through_nnsight_match_hooks(family, tiny_checkpoints):
    handle = load_model(tiny_checkpoints[family])
    assert handle.n_layers == 2 and handle.d_ff == 48
    inputs = dict(handle.tokenizer(["hello world, again.", "a short one"], return_tensors="pt", padding=True))
    # nnsight passes mask-derived position ids for left-padded rows; give both paths the same.
    position_ids = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    inputs["position_ids"] = position_ids
    got = read_sites(handle, inputs, sites=handle.arch.sites)
    ref = hook_reference(handle.model, handle.arch, inputs, handle.d_ff)
    for site in handle.arch.sites:
        assert len(got[site]) == 2
        for layer in range(2):
            assert got[site][layer].shape == (2, inputs["input_ids"].shape[1], 48)
            assert torch.equal(got[site][layer], ref[site][layer]), (family, site, layer)
    if handle.arch.gated:
        # s = act(g) and a = s·u differ: the three sites really are three different tensors.
        assert not torch.equal(got["s"][0], got["a"][0])
    assert not torch.equal(got["g"][0], got["s"][0])


def test_site_a_rejected_on_non_gated_model(tiny_checkpoints):
    handle = load_model(tiny_checkpoints["gpt2"])
    with pytest.raises(SiteError, match="not gated"):
        read_sites(handle, dict(handle.tokenizer(["abc"], return_tensors="pt")), sites=("a",))


def test_unknown_family_lists_supported_ones():
    class Config:
        model_type = "bert"

    with pytest.raises(UnsupportedArchitecture) as info:
        architecture_for(Config())
    assert "Llama" in info.value.hint and "GPT-2" in info.value.hint
