"""Transfer-neuron scoring: closed form vs brute-force cosines, and the states it reads."""

from __future__ import annotations

import pytest
import torch

from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.neurons.transfer import (
    candidate_layers,
    down_weight,
    last_token_states,
    score_layer,
    split_indices,
    transfer_neurons,
)


def brute_force(r, a, v, c):
    """For each neuron, build r + a_i v_i explicitly for every sentence and average the cosine gain."""
    n_sent, d_ff = a.shape
    out = torch.zeros(d_ff, dtype=torch.float64)
    for i in range(d_ff):
        gains = []
        for s in range(n_sent):
            moved = r[s].double() + a[s, i].double() * v[:, i].double()
            gains.append(torch.nn.functional.cosine_similarity(moved, c.double(), dim=0)
                         - torch.nn.functional.cosine_similarity(r[s].double(), c.double(), dim=0))
        out[i] = torch.stack(gains).mean()
    return out


def test_closed_form_matches_brute_force_random():
    g = torch.Generator().manual_seed(0)
    r, a = torch.randn(7, 16, generator=g), torch.randn(7, 40, generator=g) * 3
    v, c = torch.randn(16, 40, generator=g), torch.randn(16, generator=g)
    assert (score_layer(r, a, v, c) - brute_force(r, a, v, c)).abs().max() <= 1e-5


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2"])
def test_states_and_scores_on_a_real_forward(tiny_checkpoints, family):
    handle = load_model(tiny_checkpoints[family])
    sentences = ["the cat sat.", "a dog ran far away, fast.", "hello"]
    states = last_token_states(handle, sentences, batch_size=2)
    assert states.h.shape == (3, 2, 32) and states.a.shape == (3, 2, 48)
    for layer in range(2):
        v = down_weight(handle, layer)
        assert v.shape == (32, 48)
        # The MLP adds down_proj(a) (+ bias) to the residual r: r + V a must give the layer output.
        bias = 0.0
        if family == "gpt2":
            bias = handle.model.transformer.h[layer].mlp.c_proj.bias.detach()
        rebuilt = states.r[:, layer] + states.a[:, layer] @ v.T + bias
        assert torch.allclose(rebuilt, states.h[:, layer], atol=1e-4), (family, layer)
        c = states.h[:, layer].mean(0)
        closed = score_layer(states.r[:, layer], states.a[:, layer], v, c)
        assert (closed - brute_force(states.r[:, layer], states.a[:, layer], v, c)).abs().max() <= 1e-5


def test_candidate_layers_follow_depth_fractions():
    assert candidate_layers("type1", 32) == list(range(20))
    assert candidate_layers("type2", 32) == list(range(20, 32))
    assert candidate_layers("type1", 6) == [0, 1, 2, 3]
    assert candidate_layers("type2", 6) == [4, 5]


def test_transfer_neurons_top_n_and_split(tiny_checkpoints):
    handle = load_model(tiny_checkpoints["llama"])
    en = ["the cat sat.", "a dog ran.", "we eat rice.", "it is cold.", "go home now."]
    xx = ["le chat.", "un chien.", "on mange.", "il fait froid.", "rentre."]
    result = transfer_neurons(handle, "type1", {"fr": (en, xx)}, top_n=10, test_share=0.4, seed=3)
    assert len(result.neurons["fr"]) == 10
    assert set(result.neurons["fr"][:, 0].tolist()) <= set(candidate_layers("type1", 2))
    train, test = split_indices(5, 0.4, 3)
    assert result.params["split"]["fr"] == {"train": len(train), "test": test}
    assert sorted(train + test) == list(range(5))
