"""Neuron masks and masked LoRA: ΔW restricted to the chosen MLP neurons (SCIENCE.md §6).

For a mask M over the d_ff neurons of a layer, ΔW = M ⊙ (B A) stays low-rank: it is B with the
rows outside M zeroed for gate/up (output dim d_ff), and A with the columns outside M zeroed for
down (input dim d_ff). peft has no masks (its method registry is closed), so this module wraps a
standard `LoraConfig` and, on the injected layers, zeroes those rows/columns once and masks their
gradients with a hook (STACK_NOTES.md, peft 0.21.2). Zero parameters with zero gradients stay
exactly zero under AdamW (weight decay scales them, the update is 0 / (0 + ε)), so the weights
outside the mask are bit-identical to the base after training. Layers without a selected neuron
get no MLP LoRA at all. The saved adapter holds the already-zeroed matrices (`fold`), so plain
`PeftModel.from_pretrained` reproduces the model without our hooks.

Module paths come from the architecture table; the up projection is the MLP's `up_proj` (the
name every gated, non-fused family in the table uses) or the second half of a fused gate_up.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from lsn_explorer.core.finetune.config import FinetuneError, FinetuneSpec, NeuronChoice
from lsn_explorer.core.model.architectures import layer_modules, mlp_module

if TYPE_CHECKING:
    from peft import LoraConfig

    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.core.neurons.neuron_set import NeuronSet
    from lsn_explorer.session.store import Session

ADAPTER = "default"  # peft's adapter name; one adapter per fine-tune
UP_PROJ = "up_proj"


@dataclass
class NeuronMask:
    """The neurons a fine-tune may change: (layer, index) pairs of one model shape.

    Attributes:
        label: the `--neurons` choice they came from (`#12:zh`, `random:#12:zh`).
        pairs: LongTensor [k, 2] of (layer, index), sorted and unique.
    """

    label: str
    n_layers: int
    d_ff: int
    pairs: torch.Tensor

    def per_layer(self) -> list[int]:
        return torch.bincount(self.pairs[:, 0], minlength=self.n_layers).tolist()

    def layers(self) -> list[int]:
        """Layers with at least one selected neuron (the only ones that get MLP LoRA)."""
        return [layer for layer, count in enumerate(self.per_layer()) if count]

    def row(self, layer: int) -> torch.Tensor:
        """Bool [d_ff]: which neurons of `layer` are selected."""
        keep = torch.zeros(self.d_ff, dtype=torch.bool)
        keep[self.pairs[self.pairs[:, 0] == layer, 1]] = True
        return keep

    def summary(self) -> dict[str, Any]:
        """Plain data for records: the choice, the count and the count per layer."""
        return {"neurons": self.label, "count": len(self.pairs), "per_layer": self.per_layer()}


def neuron_mask(session: Session | None, handle: ModelHandle, spec: FinetuneSpec) -> NeuronMask | None:
    """The neurons `spec.neurons` selects on `handle`'s model (None for `none`).

    Raises:
        FinetuneError: the set is missing, was found on a model of another shape, lacks a
            language, or selects no neurons for it.
    """
    choice = spec.choice
    if choice.set is None:
        return None
    if session is None:
        raise FinetuneError(f"neuron set {choice.set!r} lives in a session, and none is open", "pass --session")
    neuron_set, what = _stored_set(session, choice)
    if (neuron_set.n_layers, neuron_set.d_ff) != (handle.n_layers, handle.d_ff):
        raise FinetuneError(
            f"{what} was found on a {neuron_set.n_layers}×{neuron_set.d_ff} model, "
            f"{handle.source} is {handle.n_layers}×{handle.d_ff}",
            "identify neurons on this model first (lsn-explorer identify)")
    return mask_from_set(neuron_set, choice, seed=spec.seed, what=what)


def mask_from_set(neuron_set: NeuronSet, choice: NeuronChoice, *, seed: int = 0, what: str = "") -> NeuronMask:
    """The union of `choice.langs`' neurons in `neuron_set`, or (random) a seeded draw of as many
    per layer among each layer's other neurons (`random_baseline`); `what` names the set in errors."""
    what = what or f"neuron set {choice.set!r}"
    from lsn_explorer.core.neurons.baseline import random_baseline
    from lsn_explorer.core.neurons.neuron_set import NeuronSet

    parts = []
    for lang in choice.langs:
        if lang not in neuron_set.neurons:
            raise FinetuneError(f"{what} has no neurons for {lang}",
                                f"its languages: {', '.join(neuron_set.languages) or 'none'}")
        if len(neuron_set.neurons[lang]) == 0:
            raise FinetuneError(f"{what} selects no neurons for {lang}",
                                "choose another language or set, or identify with a larger rate")
        parts.append(neuron_set.neurons[lang])
    key = "+".join(choice.langs)
    union = NeuronSet(neuron_set.method, {}, neuron_set.n_layers, neuron_set.d_ff, {key: torch.cat(parts)})
    if choice.random:
        union = random_baseline(union, seed=seed)
    return NeuronMask(choice.label, union.n_layers, union.d_ff, union.neurons[key])


@dataclass(frozen=True)
class LoraTarget:
    """One module that gets LoRA: its path in the base model, and which of its LoRA matrices'
    rows (B, over outputs) or columns (A, over inputs) may be non-zero (None: all)."""

    name: str
    rows: torch.Tensor | None = None
    columns: torch.Tensor | None = None


def lora_targets(handle: ModelHandle, spec: FinetuneSpec, mask: NeuronMask | None) -> list[LoraTarget]:
    """The masked MLP projections of the layers with selected neurons, and the attention
    projections of every layer.

    Raises:
        FinetuneError: the family has no such module (an up projection in GPT-2, separate q/k/v/o
            projections in a fused-attention family).
    """
    arch, model = handle.arch, handle.model
    targets: list[LoraTarget] = []
    for layer in mask.layers() if mask is not None else []:
        keep = mask.row(layer)  # type: ignore[union-attr]  # layers() is empty without a mask
        mlp = mlp_module(model, arch, layer)
        prefix = f"{arch.layers}.{layer}.{arch.mlp}"
        if arch.fused_gate_up and {"gate", "up"} & set(spec.modules):
            none = torch.zeros_like(keep)
            rows = torch.cat([keep if "gate" in spec.modules else none, keep if "up" in spec.modules else none])
            targets.append(LoraTarget(f"{prefix}.{arch.gate}", rows=rows))
        elif not arch.fused_gate_up:
            if "gate" in spec.modules:
                targets.append(LoraTarget(f"{prefix}.{arch.gate}", rows=keep))
            if "up" in spec.modules:
                if not arch.gated or not hasattr(mlp, UP_PROJ):
                    raise FinetuneError(f"{arch.family} MLPs have no up projection",
                                        "leave up out of --modules (e.g. --modules gate,down)")
                targets.append(LoraTarget(f"{prefix}.{UP_PROJ}", rows=keep))
        if "down" in spec.modules:
            targets.append(LoraTarget(f"{prefix}.{arch.down}", columns=keep))
    for layer, block in enumerate(layer_modules(model, arch) if spec.attention else []):
        for letter in spec.attention:
            found = [name for name, _ in block.named_modules() if name.rpartition(".")[2] == f"{letter}_proj"]
            if len(found) != 1:
                raise FinetuneError(f"{arch.family} has no separate {letter}_proj attention projection",
                                    "attention LoRA needs q_proj, k_proj, v_proj and o_proj; use --attention none")
            targets.append(LoraTarget(f"{arch.layers}.{layer}.{found[0]}"))
    return targets


def lora_config(spec: FinetuneSpec, targets: list[LoraTarget], head: str) -> LoraConfig:
    """A standard peft `LoraConfig` for `targets` (exact module paths, so layers without selected
    neurons get no MLP LoRA); a classifier also trains its head (`modules_to_save`)."""
    from peft import LoraConfig

    return LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=0.0, bias="none",  # type: ignore[arg-type]
                      target_modules=sorted({t.name for t in targets}),
                      task_type="SEQ_CLS" if head == "classifier" else "CAUSAL_LM",
                      modules_to_save=["score"] if head == "classifier" else None)


def add_masked_lora(handle: ModelHandle, spec: FinetuneSpec, mask: NeuronMask | None
                    ) -> tuple[Any, list[LoraTarget], list[Any]]:
    """Wrap `handle.model` in a trainable peft model with masked LoRA; returns (peft model, its
    targets, gradient-hook handles). peft injects its layers in place, so `handle.model` carries
    them too.

    Raises:
        FinetuneError: see `lora_targets`; or nothing to train.
    """
    from peft import get_peft_model

    targets = lora_targets(handle, spec, mask)
    if not targets and handle.head != "classifier":
        raise FinetuneError("nothing to train: no module gets LoRA", "name neurons or attention modules")
    with warnings.catch_warnings():
        # peft 0.21 asks transformers 5.23 a deprecated question about gradient checkpointing; harmless
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(handle.model, lora_config(spec, targets, handle.head))
    return peft_model, targets, mask_lora(handle.model, targets)


def mask_lora(model: Any, targets: list[LoraTarget]) -> list[Any]:
    """Zero the LoRA rows (B) / columns (A) outside each target's mask and mask their gradients;
    returns the hook handles (hooks are not saved with an adapter)."""
    hooks = []
    for target in targets:
        layer = model.get_submodule(target.name)
        if target.rows is not None:
            hooks.append(_restrict(layer.lora_B[ADAPTER].weight, target.rows[:, None]))
        if target.columns is not None:
            hooks.append(_restrict(layer.lora_A[ADAPTER].weight, target.columns[None, :]))
    return hooks


def fold(model: Any, targets: list[LoraTarget]) -> None:
    """Multiply each LoRA matrix by its mask once more, so a saved adapter holds exact zeros
    outside the mask whatever happened to it (a no-op after masked training)."""
    for target in targets:
        layer = model.get_submodule(target.name)
        with torch.no_grad():
            if target.rows is not None:
                weight = layer.lora_B[ADAPTER].weight
                weight.mul_(target.rows[:, None].to(weight.device, weight.dtype))
            if target.columns is not None:
                weight = layer.lora_A[ADAPTER].weight
                weight.mul_(target.columns[None, :].to(weight.device, weight.dtype))


def _restrict(weight: torch.Tensor, keep: torch.Tensor) -> Any:
    """Zero `weight` where `keep` (broadcast) is False, and its gradient there from now on."""
    factor = keep.to(weight.device, weight.dtype)
    with torch.no_grad():
        weight.mul_(factor)
    return weight.register_hook(lambda grad: grad * factor)


def _stored_set(session: Session, choice: NeuronChoice) -> tuple[NeuronSet, str]:
    """The stored set `choice` names, and how messages name it (`neuron set 'lape' (#12)`)."""
    from lsn_explorer.core.finetune.config import check_neuron_record
    from lsn_explorer.core.neurons.neuron_set import NeuronSet

    check_neuron_record(session, choice)
    assert choice.set is not None  # `none` has no set; callers return before
    if choice.set.startswith("#"):
        record = next((r for r in session.records("neuron_set") if r.id == int(choice.set[1:])), None)
    else:
        record = session.latest("neuron_set", choice.set)
    assert record is not None  # check_neuron_record found it
    what = f"neuron set {record.name!r}" + (f" ({choice.set})" if choice.set.startswith("#") else "")
    return NeuronSet.from_json(record.payload["set"], source=what), what

