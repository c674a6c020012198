"""The nnsight seam: the only module that imports nnsight.

Everything that reads or writes neuron sites inside a forward pass goes through the helpers here,
so the rest of the engine talks about (layer, site) and never about envoys or proxies.
nnsight 0.8 idioms (STACK_NOTES.md): wrap a built model with `TransformersModel(model,
tokenizer=...)`; touch modules in forward order inside a trace; lists built inside a trace must be
created with `nnsight.save([])`; run traces under `torch.no_grad()`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Sequence

import nnsight
import torch

from lsn_explorer.core.interventions.apply import EditPlan, Phase, apply_write
from lsn_explorer.core.model.architectures import Architecture, layer_modules, mlp_module
from lsn_explorer.core.vocab import SITES, Site

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle


def wrap(model: Any, tokenizer: Any) -> Any:
    """Wrap a built transformers model (causal LM or sequence classifier) for tracing; the
    tokenizer is shared, not copied."""
    return nnsight.TransformersModel(model, tokenizer=tokenizer)


def nnsight_model(handle: ModelHandle) -> Any:
    """The nnsight wrapper of `handle`'s model, built once and kept on the handle."""
    if handle.traced is None:
        handle.traced = wrap(handle.model, handle.tokenizer)
    return handle.traced


def stream_site(handle: ModelHandle, inputs: dict[str, torch.Tensor], site: Site,
                consume: Callable[[int, Any], None]) -> None:
    """One forward pass; `consume(layer, values)` sees each layer's `site` activations
    ([tokens, d_ff]) inside the pass, so only one layer's values are alive at a time (statistics
    over long corpora keep flat memory this way)."""
    model, arch, d_ff = nnsight_model(handle), handle.arch, handle.d_ff
    with torch.no_grad(), model.trace(dict(inputs)):
        for layer in range(handle.n_layers):
            consume(layer, site_proxy(mlp_module(model, arch, layer), arch, site, d_ff).reshape(-1, d_ff))


def read_last_token(handle: ModelHandle, inputs: dict[str, torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """At the last position of each (left-padded) row, per layer: the decoder layer's raw output h,
    the residual r entering the MLP (the input of the pre-MLP norm) and site a.

    Returns float32 CPU tensors h [B, L, d], r [B, L, d], a [B, L, d_ff] (Tezuka & Inoue's
    quantities, SCIENCE.md §8; h is the raw layer output, not the post-final-norm hidden state).
    """
    model, arch, d_ff = nnsight_model(handle), handle.arch, handle.d_ff
    with torch.no_grad(), model.trace(dict(inputs)):
        saved = nnsight.save({"h": [], "r": [], "a": []})
        blocks = layer_modules(model, arch)
        for layer in range(handle.n_layers):
            block = blocks[layer]
            saved["r"].append(getattr(block, arch.pre_mlp_norm).input[:, -1].float().cpu().save())
            saved["a"].append(site_proxy(mlp_module(model, arch, layer), arch, "a", d_ff)[:, -1].float().cpu().save())
            out = block.output
            saved["h"].append((out[0] if isinstance(out, tuple) else out)[:, -1].float().cpu().save())
    return tuple(torch.stack(saved[key], 1) for key in ("h", "r", "a"))  # type: ignore[return-value]


def read_layer_states(handle: ModelHandle, inputs: dict[str, torch.Tensor],
                      plan: EditPlan | None = None) -> torch.Tensor:
    """Last-position states of every depth, with `plan`'s prompt-phase writes active.

    Depth 0 is the input of the first decoder block (the embedding output, with whatever scaling
    or position embedding the family adds), depth l the raw output of decoder layer l: the
    residual stream, not the post-final-norm `hidden_states[-1]` of transformers (SCIENCE.md §8).
    Rows must be left-padded; the writes of an `@last` intervention land on the final column.
    Returns float32 CPU [batch, n_layers + 1, d_model].
    """
    model, arch = nnsight_model(handle), handle.arch
    with torch.no_grad(), model.trace(dict(inputs)):
        blocks = layer_modules(model, arch)
        states = nnsight.save([blocks[0].input[:, -1].float().cpu()])
        for layer in range(handle.n_layers):
            for write in (plan.writes["prompt"].get(layer, []) if plan is not None else []):
                apply_write(site_proxy(mlp_module(model, arch, layer), arch, write.site, handle.d_ff), write, None)
            out = blocks[layer].output
            states.append((out[0] if isinstance(out, tuple) else out)[:, -1].float().cpu())
    return torch.stack(list(states), 1)


def site_proxy(mlp: Any, arch: Architecture, site: Site, d_ff: int) -> Any:
    """The nnsight proxy of `site` inside one MLP envoy (read or write it in place).

    g of a fused gate/up projection (Phi3) is the first d_ff columns of its output, matching
    `gate, up = gate_up_proj(x).chunk(2, dim=-1)` in the model code.
    """
    if site == "g":
        out = getattr(mlp, arch.gate).output
        return out[..., :d_ff] if arch.fused_gate_up else out
    if site == "s":
        return getattr(mlp, arch.act).output
    return getattr(mlp, arch.down).input


def read_sites(
    handle: ModelHandle,
    inputs: dict[str, torch.Tensor],
    sites: Sequence[Site] = ("g", "s", "a"),
    layers: Sequence[int] | None = None,
) -> dict[Site, list[torch.Tensor]]:
    """Run one forward pass and return the activations at `sites` for `layers`.

    Args:
        handle: the loaded model.
        inputs: tokenizer output (`input_ids`, `attention_mask`, optionally `position_ids`).
        sites: which of g, s, a to read; each must exist in the architecture.
        layers: layer indices (default: all), read in ascending order.

    Returns:
        site → list over `layers` of tensors shaped [batch, seq, d_ff] (on the model's device).
    """
    for site in sites:
        handle.arch.check_site(site)
    layer_ids = sorted(range(handle.n_layers) if layers is None else layers)
    order: list[Site] = [s for s in SITES if s in sites]  # forward order inside each MLP
    wrapped = nnsight_model(handle)
    d_ff = handle.d_ff
    with torch.no_grad(), wrapped.trace(dict(inputs)):
        saved = nnsight.save({site: [] for site in order})
        for layer in layer_ids:
            mlp = mlp_module(wrapped, handle.arch, layer)
            for site in order:
                saved[site].append(site_proxy(mlp, handle.arch, site, d_ff).save())
    return {site: [t.detach() for t in saved[site]] for site in order}


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token (works for left and right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * (positions + 1)).argmax(dim=1)


def _write_plan(wrapped: Any, handle: ModelHandle, plan: EditPlan, phase: Phase,
                last: torch.Tensor | None) -> None:
    """Apply one phase of a plan inside a trace: one indexed write per (layer, site)."""
    for layer, writes in plan.writes[phase].items():
        mlp = mlp_module(wrapped, handle.arch, layer)
        for write in writes:  # already in forward order: s before a
            apply_write(site_proxy(mlp, handle.arch, write.site, handle.d_ff), write, last)


def forward_logits(handle: ModelHandle, inputs: dict[str, torch.Tensor], plan: EditPlan | None = None) -> torch.Tensor:
    """Next-token logits [batch, seq, vocab] of one forward pass, with `plan`'s prompt-phase writes
    applied. Without a plan (or with an empty one) this is the plain transformers forward.

    Raises:
        ModelLoadError: the model is a sequence classifier (it has no next-token logits).
    """
    handle.require("lm", "token log-probabilities (perplexity, XQuAD/MKQA, verbalised XNLI)")
    return _forward(handle, inputs, plan)


def class_logits(handle: ModelHandle, inputs: dict[str, torch.Tensor], plan: EditPlan | None = None) -> torch.Tensor:
    """Classification-head logits [batch, num_labels] of one forward pass, with `plan`'s
    prompt-phase writes applied (the head order is `handle.label_names`).

    The model pools one position per row (for decoder classifiers, the rightmost token that is
    not `config.pad_token_id`); the writes themselves act on the MLPs at every position they cover.

    Raises:
        ModelLoadError: the model is a causal LM (it has no classification head).
    """
    handle.require("classifier", "classifying with a head")
    return _forward(handle, inputs, plan)


def _forward(handle: ModelHandle, inputs: dict[str, torch.Tensor], plan: EditPlan | None) -> torch.Tensor:
    """The `.logits` of the model's output, whatever its head, with the plan's prompt-phase writes."""
    with torch.no_grad():
        if plan is None or plan.empty:
            return handle.model(**inputs).logits
        last = last_positions(inputs["attention_mask"])
        wrapped = nnsight_model(handle)
        with wrapped.trace(dict(inputs)):
            _write_plan(wrapped, handle, plan, "prompt", last)
            logits = wrapped.output.logits.save()
    return logits


def generate_rows(
    handle: ModelHandle,
    inputs: dict[str, torch.Tensor],
    plans: Sequence[EditPlan | None],
    *,
    max_new_tokens: int,
    **generate_kwargs: Any,
) -> torch.Tensor:
    """Generate from the same `inputs` once per plan, all rows in ONE batched run.

    Each plan's edits are scoped to its own rows (one nnsight invoke per plan); a None or empty
    plan is the baseline. Prompt-phase writes happen at step 0 (the prompt pass), decode-phase
    writes at every later step (one KV-cached position each). Returns token ids
    [rows × batch, prompt + new] in plan order.
    """
    handle.require("lm", "generation")
    wrapped = nnsight_model(handle)
    with warnings.catch_warnings(), torch.no_grad(), \
            wrapped.generate(max_new_tokens=max_new_tokens, **generate_kwargs) as tracer:
        # A generation that ends early (EOS, cancel) leaves the step loop waiting for steps that
        # never come; nnsight warns and moves on, which is exactly what we want.
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        for plan in plans:
            with tracer.invoke(dict(inputs)):  # nnsight compiles this body: no `continue` inside
                _write_steps(tracer, wrapped, handle, plan, max_new_tokens)
        with tracer.invoke():  # read in its own invoke: code after a step loop cut short by EOS never runs
            result = tracer.result.save()
    return result


def _write_steps(tracer: Any, wrapped: Any, handle: ModelHandle, plan: EditPlan | None, steps: int) -> None:
    if plan is None or plan.empty:
        return
    if not plan.decodes:  # a write outside a step loop applies to the prompt pass only
        _write_plan(wrapped, handle, plan, "prompt", None)
        return
    for step in tracer.iter[:steps]:
        _write_plan(wrapped, handle, plan, "prompt" if step == 0 else "decode", None)
