"""The 4-bit NF4 path (bitsandbytes) loads and traces on CPU, as it does on a GPU box.

bitsandbytes runs a 4-bit layer on CPU with one of two kernels, chosen per layer when it is built
(`Linear4bit.support_avx512bf16_for_cpu`, from `has_avx512bf16()`): on a CPU with AVX512-BF16 the
first forward repacks the weight for a fused bf16 kernel; elsewhere every forward dequantises it.
Both are tested wherever the CPU allows, by setting that attribute (the generic kernel runs on any
CPU). Both need shapes the shared tiny models do not have, hence a 4-bit-sized tiny model.
"""

from __future__ import annotations

import pytest
import torch
from tiny import FOUR_BIT_SIZES, hook_reference, save_tiny_checkpoint

from lsn_explorer.core.model.backend import read_sites
from lsn_explorer.core.model.loading import load_model
from lsn_explorer.errors import ModelLoadError

pytest.importorskip("bitsandbytes")

KERNELS = ("generic", "avx512-bf16")


@pytest.fixture(scope="module")
def nf4_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint("llama", tmp_path_factory.mktemp("nf4") / "llama", **FOUR_BIT_SIZES)


def use_cpu_kernel(model, kernel: str) -> list:
    """Make every 4-bit layer of `model` run on `kernel`; return those layers."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import has_avx512bf16

    if kernel == "avx512-bf16" and not has_avx512bf16():
        pytest.skip("this CPU has no AVX512-BF16, so bitsandbytes never uses its repacked kernel here")
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = kernel == "avx512-bf16"
    return layers


@pytest.mark.parametrize("kernel", KERNELS)
def test_nf4_loads_traces_and_matches_hooks(nf4_checkpoint, kernel):
    import bitsandbytes as bnb

    handle = load_model(nf4_checkpoint, four_bit=True, device="cpu")
    assert handle.quantization == "nf4"
    layers = use_cpu_kernel(handle.model, kernel)
    gate = handle.model.model.layers[0].mlp.gate_proj
    assert isinstance(gate, bnb.nn.Linear4bit)
    assert gate.weight.quant_type == "nf4"
    inputs = dict(handle.tokenizer(["hello world"], return_tensors="pt"))
    got = read_sites(handle, inputs)
    ref = hook_reference(handle.model, handle.arch, inputs, handle.d_ff)
    # The kernel under test is the one that ran: only the AVX512-BF16 one repacks the weights.
    # (Checked after the full forward: read_sites stops at its last site, before the last
    # down_proj and the LM head.)
    assert {getattr(layer.weight.quant_state, "packing_format_for_cpu", False) for layer in layers} == {
        kernel == "avx512-bf16"}
    for site in ("g", "s", "a"):
        for layer in range(handle.n_layers):
            assert torch.equal(got[site][layer], ref[site][layer])

    # Each 4-bit layer against its input times the full-precision weight (plain matmul): NF4 costs
    # ~10 % relative error here; a kernel that misreads the block scales costs ~50 %.
    full = load_model(nf4_checkpoint)
    full_modules = dict(full.model.named_modules())
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = [module.register_forward_hook(lambda _m, args, out, name=name: seen.__setitem__(name, (args[0], out)))
               for name, module in handle.model.named_modules() if isinstance(module, bnb.nn.Linear4bit)]
    try:
        with torch.no_grad():
            handle.model(**inputs)
    finally:
        for h in handles:
            h.remove()
    assert len(seen) == len(layers) == 7 * handle.n_layers  # q k v o gate up down
    for name, (x, y) in seen.items():
        exact = x.float() @ full_modules[name].weight.T
        assert ((y.float() - exact).norm() / exact.norm()).item() < 0.2, name
    # Quantised weights change activations a little, not beyond recognition.
    full_g = read_sites(full, inputs, sites=("g",))["g"][0]
    assert not torch.equal(full_g, got["g"][0].float())
    assert torch.corrcoef(torch.stack([full_g.flatten(), got["g"][0].float().flatten()]))[0, 1] > 0.95


def test_shapes_the_cpu_kernels_cannot_run_are_a_load_error(tiny_checkpoints):
    # The shared tiny llama: hidden 32, below the 64-weight quantisation block.
    with pytest.raises(ModelLoadError) as caught:
        load_model(tiny_checkpoints["llama"], four_bit=True, device="cpu")
    error = caught.value
    assert "model.layers.0.self_attn.q_proj" in error.message and "32×32" in error.message
    assert "\n" not in error.message
    assert error.hint.startswith("load without --4bit") and "multiples of 64" in error.hint



@pytest.mark.parametrize("kernel", KERNELS)
def test_down_weight_is_the_same_before_and_after_a_forward(nf4_checkpoint, kernel):
    # Transfer-neuron scoring reads down_proj's weight. After the first forward on the AVX512-BF16
    # kernel the stored bytes are repacked; reading them as plain NF4 gave errors up to 1.2.
    from lsn_explorer.core.neurons.transfer import down_weight

    handle = load_model(nf4_checkpoint, four_bit=True, device="cpu")
    use_cpu_kernel(handle.model, kernel)
    before = [down_weight(handle, layer) for layer in range(handle.n_layers)]
    read_sites(handle, dict(handle.tokenizer(["hello world"], return_tensors="pt")), sites=("a",))
    after = [down_weight(handle, layer) for layer in range(handle.n_layers)]
    for a, b in zip(before, after):
        # The repack keeps block scales in bf16 (double quantisation dropped): ≈ 1e-3 apart, not 1.
        torch.testing.assert_close(b, a, atol=5e-3, rtol=1e-2)
