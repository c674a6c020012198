"""The 4-bit NF4 path (bitsandbytes) loads and traces on CPU, as it does on a GPU box."""

from __future__ import annotations

import pytest
import torch

from lsn_explorer.core.backend import read_sites
from lsn_explorer.core.model import load_model
from tiny import hook_reference

pytest.importorskip("bitsandbytes")


def test_nf4_loads_traces_and_matches_hooks(tiny_checkpoints):
    import bitsandbytes as bnb

    handle = load_model(tiny_checkpoints["llama"], four_bit=True, device="cpu")
    assert handle.quantization == "nf4"
    gate = handle.model.model.layers[0].mlp.gate_proj
    assert isinstance(gate, bnb.nn.Linear4bit)
    assert gate.weight.quant_type == "nf4"
    inputs = dict(handle.tokenizer(["hello world"], return_tensors="pt"))
    got = read_sites(handle, inputs)
    ref = hook_reference(handle.model, handle.arch, inputs, handle.d_ff)
    for site in ("g", "s", "a"):
        for layer in range(handle.n_layers):
            assert torch.equal(got[site][layer], ref[site][layer])
    # Quantised weights change activations a little, not beyond recognition.
    full = load_model(tiny_checkpoints["llama"])
    full_g = read_sites(full, inputs, sites=("g",))["g"][0]
    assert not torch.equal(full_g, got["g"][0].float())
    assert torch.corrcoef(torch.stack([full_g.flatten(), got["g"][0].float().flatten()]))[0, 1] > 0.95
