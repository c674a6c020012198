"""The architecture table: where the MLP neurons of each supported model family live.

One `Architecture` row per family. Adding a family is adding a row here, never a name check
elsewhere. Paths are attribute paths relative to the loaded model: the `*ForCausalLM` module, or
the family's `*ForSequenceClassification`, which keeps its decoder under the same attribute
(`model` for Llama-like families, `transformer` for GPT-2; the head is `score` instead of
`lm_head`). The same row serves plain PyTorch hooks and nnsight envoys; `check_paths` confirms a
loaded model really has them.

Sites (SCIENCE.md): g = gate pre-activation, s = activation output act_fn(g), a = input of the
down projection (s·u for gated MLPs; equal to s for non-gated ones such as GPT-2).

This module imports neither torch nor nnsight: it is pure data plus lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

from lsn_explorer.core.vocab import SITES, Site
from lsn_explorer.errors import SiteError, UnsupportedArchitecture


@dataclass(frozen=True)
class Architecture:
    """Module paths of one model family.

    Attributes:
        family: human name shown to users.
        model_types: `config.model_type` values that map to this row.
        layers: path from the loaded model (causal LM or classifier) to the list of decoder blocks.
        mlp: attribute of a decoder block holding the MLP.
        gate: MLP submodule whose output is g (for fused models, its first d_ff columns).
        act: MLP submodule whose output is s.
        down: MLP submodule whose input is a.
        fused_gate_up: gate and up projections are one Linear with 2·d_ff outputs (Phi3).
        gated: the MLP multiplies act(g) by an up projection (False for GPT-2, where a = s).
        d_ff_key: config attribute holding d_ff; None means 4·hidden_size (GPT-2's default).
        pre_mlp_norm: decoder-block submodule whose input is the residual stream right before
            the MLP (h_{l-1} + attention output), used by transfer-neuron scoring.
    """

    family: str
    model_types: tuple[str, ...]
    layers: str
    mlp: str
    gate: str
    act: str
    down: str
    fused_gate_up: bool = False
    gated: bool = True
    d_ff_key: str | None = "intermediate_size"
    pre_mlp_norm: str = "post_attention_layernorm"

    @property
    def sites(self) -> tuple[Site, ...]:
        """Sites that exist and are distinct in this family (a = s when not gated)."""
        return SITES if self.gated else ("g", "s")

    def check_site(self, site: str) -> Site:
        """Return `site` if this family has it, else raise a `SiteError` with a hint."""
        if site not in SITES:
            raise SiteError(f"unknown site {site!r}", "use g (gate), s (activation) or a (down input)")
        if site not in self.sites:
            raise SiteError(
                f"site {site!r} does not exist in {self.family}: its MLP is not gated, so a = s",
                "use --site s (or g)",
            )
        return site  # type: ignore[return-value]


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("Llama", ("llama",), "model.layers", "mlp", "gate_proj", "act_fn", "down_proj"),
    Architecture("Mistral", ("mistral",), "model.layers", "mlp", "gate_proj", "act_fn", "down_proj"),
    Architecture("Qwen2", ("qwen2",), "model.layers", "mlp", "gate_proj", "act_fn", "down_proj"),
    Architecture("Qwen3", ("qwen3",), "model.layers", "mlp", "gate_proj", "act_fn", "down_proj"),
    Architecture(
        "Gemma2", ("gemma2",), "model.layers", "mlp", "gate_proj", "act_fn", "down_proj",
        pre_mlp_norm="pre_feedforward_layernorm",
    ),
    Architecture(
        "Gemma3 (text)", ("gemma3_text",), "model.layers", "mlp", "gate_proj", "act_fn", "down_proj",
        pre_mlp_norm="pre_feedforward_layernorm",
    ),
    Architecture(
        "Phi3", ("phi3",), "model.layers", "mlp", "gate_up_proj", "activation_fn", "down_proj",
        fused_gate_up=True,
    ),
    Architecture(
        "GPT-2", ("gpt2",), "transformer.h", "mlp", "c_fc", "act", "c_proj",
        gated=False, d_ff_key=None, pre_mlp_norm="ln_2",
    ),
)

_BY_MODEL_TYPE: dict[str, Architecture] = {
    model_type: arch for arch in ARCHITECTURES for model_type in arch.model_types
}


def supported_families() -> str:
    """Comma-separated family names, for error messages and help."""
    return ", ".join(arch.family for arch in ARCHITECTURES)


def architecture_for(config: Any) -> Architecture:
    """Look up the row for a Hugging Face config (anything with `model_type`)."""
    model_type = getattr(config, "model_type", None)
    arch = _BY_MODEL_TYPE.get(model_type or "")
    if arch is None:
        raise UnsupportedArchitecture(
            f"model type {model_type!r} is not supported",
            f"supported families: {supported_families()}",
        )
    return arch


def n_layers(config: Any) -> int:
    """Number of decoder blocks, from the config."""
    return int(getattr(config, "num_hidden_layers", None) or config.n_layer)


def d_ff(config: Any, arch: Architecture | None = None) -> int:
    """MLP width (neurons per layer), from the config."""
    arch = arch or architecture_for(config)
    if arch.d_ff_key is not None:
        return int(getattr(config, arch.d_ff_key))
    inner = getattr(config, "n_inner", None)
    return int(inner) if inner else 4 * int(config.hidden_size)


def resolve(root: Any, path: str) -> Any:
    """Follow a dotted attribute path (works on torch modules and nnsight envoys alike)."""
    return reduce(getattr, path.split("."), root) if path else root


def layer_modules(root: Any, arch: Architecture) -> Any:
    """The decoder blocks of `root` (a causal LM module or its nnsight wrapper)."""
    return resolve(root, arch.layers)


def mlp_module(root: Any, arch: Architecture, layer: int) -> Any:
    """The MLP of decoder block `layer`."""
    return getattr(layer_modules(root, arch)[layer], arch.mlp)


def check_paths(model: Any, arch: Architecture) -> None:
    """Raise `UnsupportedArchitecture` unless `model` has `arch`'s blocks and MLP submodules.

    A head class may keep its backbone under another attribute than the causal LM does
    (`LlamaForQuestionAnswering` uses `.transformer`); failing at load time names the problem,
    where a failure inside a trace would not.
    """
    try:
        mlp = mlp_module(model, arch, 0)
        for name in (arch.gate, arch.act, arch.down):
            getattr(mlp, name)
    except (AttributeError, IndexError, TypeError) as exc:
        raise UnsupportedArchitecture(
            f"{type(model).__name__} does not keep its {arch.family} MLPs at "
            f"{arch.layers}[i].{arch.mlp} ({exc})",
            "load the causal LM or the *ForSequenceClassification checkpoint of the family",
        ) from exc
