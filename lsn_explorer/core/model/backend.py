"""The nnsight seam: the only module that imports nnsight.

Everything that reads or writes neuron sites inside a forward pass goes through the helpers here,
so the rest of the engine talks about (layer, site) and never about envoys or proxies.
nnsight 0.8 idioms (STACK_NOTES.md): wrap a built model with `TransformersModel(model,
tokenizer=...)`; touch modules in forward order inside a trace; lists built inside a trace must be
created with `nnsight.save([])`; run traces under `torch.no_grad()`.

Remote execution (`handle.remote`): every trace here runs with `_run_options(handle)`, which
ships it to NDIF or through the dry run. A trace body is serialized and run elsewhere, so bodies
read only local names that travel well (the envoy, the architecture row, ints, edit plans,
tensors), never the handle, and call no function that imports lsn_explorer lazily: NDIF does
not have this package, only the source of the functions a body reaches.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import warnings
from contextlib import contextmanager, redirect_stdout
from pickle import PicklingError  # the exception class only: nothing here pickles or unpickles
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import nnsight
import torch
from nnsight.intervention.backends.local import LocalSimulationBackend

from lsn_explorer.core.interventions.apply import EditPlan, Phase, apply_write
from lsn_explorer.core.model.architectures import Architecture, layer_modules, mlp_module
from lsn_explorer.core.vocab import SITES, Site
from lsn_explorer.errors import RemoteJobError, first_line

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle

PACKAGE = "lsn_explorer"


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
    over long corpora keep flat memory this way).

    Remotely, `consume` runs after the pass, on every layer's values at once.
    """
    if handle.remote is not None:
        # Inside a remote trace `consume` would run on the server, and what it updates there (the
        # statistics accumulator) would never come back. So the values travel instead: all layers
        # of the batch, tokens × layers × d_ff numbers, counted here.
        for layer, values in enumerate(read_sites(handle, inputs, (site,))[site]):
            consume(layer, values.reshape(-1, handle.d_ff))
        return
    model, arch, d_ff, n_layers = nnsight_model(handle), handle.arch, handle.d_ff, handle.n_layers
    with torch.no_grad(), model.trace(dict(inputs)) as tracer:
        for layer in range(n_layers):
            consume(layer, site_proxy(mlp_module(model, arch, layer), arch, site, d_ff).reshape(-1, d_ff))
        tracer.stop()  # nothing after the last site is needed: no final norm, no LM head


def read_last_token(handle: ModelHandle, inputs: dict[str, torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """At the last position of each (left-padded) row, per layer: the decoder layer's raw output h,
    the residual r entering the MLP (the input of the pre-MLP norm) and site a.

    Returns float32 CPU tensors h [B, L, d], r [B, L, d], a [B, L, d_ff] (Tezuka & Inoue's
    quantities, SCIENCE.md §8; h is the raw layer output, not the post-final-norm hidden state).
    """
    model, arch, d_ff, n_layers = nnsight_model(handle), handle.arch, handle.d_ff, handle.n_layers
    with torch.no_grad(), _remote_job(handle), model.trace(dict(inputs), **_run_options(handle)) as tracer:
        saved = nnsight.save({"h": [], "r": [], "a": []})
        blocks = layer_modules(model, arch)
        for layer in range(n_layers):
            block = blocks[layer]
            saved["r"].append(getattr(block, arch.pre_mlp_norm).input[:, -1].float().cpu().save())
            saved["a"].append(site_proxy(mlp_module(model, arch, layer), arch, "a", d_ff)[:, -1].float().cpu().save())
            out = block.output
            saved["h"].append((out[0] if isinstance(out, tuple) else out)[:, -1].float().cpu().save())
        tracer.stop()  # the final norm and the LM head would compute nothing read here
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
    model, arch, d_ff, n_layers = nnsight_model(handle), handle.arch, handle.d_ff, handle.n_layers
    with torch.no_grad(), _remote_job(handle), model.trace(dict(inputs), **_run_options(handle)) as tracer:
        blocks = layer_modules(model, arch)
        states = nnsight.save([blocks[0].input[:, -1].float().cpu()])
        for layer in range(n_layers):
            for write in (plan.writes["prompt"].get(layer, []) if plan is not None else []):
                apply_write(site_proxy(mlp_module(model, arch, layer), arch, write.site, d_ff), write, None)
            out = blocks[layer].output
            states.append((out[0] if isinstance(out, tuple) else out)[:, -1].float().cpu())
        tracer.stop()  # the final norm and the LM head would compute nothing read here
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
    wrapped, arch, d_ff = nnsight_model(handle), handle.arch, handle.d_ff
    with torch.no_grad(), _remote_job(handle), wrapped.trace(dict(inputs), **_run_options(handle)) as tracer:
        saved = nnsight.save({site: [] for site in order})
        for layer in layer_ids:
            mlp = mlp_module(wrapped, arch, layer)
            for site in order:
                saved[site].append(site_proxy(mlp, arch, site, d_ff).save())
        # The model stops at the last site read: the layers after it and the LM head (a quarter of
        # the demo model's forward, ~7 % of an 8B Llama's) are not computed for nothing.
        tracer.stop()
    return {site: [t.detach() for t in saved[site]] for site in order}


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token (works for left and right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * (positions + 1)).argmax(dim=1)


def _write_plan(wrapped: Any, arch: Architecture, d_ff: int, plan: EditPlan, phase: Phase,
                last: torch.Tensor | None) -> None:
    """Apply one phase of a plan inside a trace: one indexed write per (layer, site)."""
    for layer, writes in plan.writes[phase].items():
        mlp = mlp_module(wrapped, arch, layer)
        for write in writes:  # already in forward order: s before a
            apply_write(site_proxy(mlp, arch, write.site, d_ff), write, last)


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
    """The `.logits` of the model's output, whatever its head, with the plan's prompt-phase writes.

    Without writes this is a plain call of the model, except remotely, where only a trace reaches
    the weights (and the logits, tokens × vocabulary numbers, travel back)."""
    writes = plan is not None and not plan.empty
    with torch.no_grad():
        if not writes and handle.remote is None:
            return handle.model(**inputs).logits
        last = last_positions(inputs["attention_mask"])
        wrapped, arch, d_ff = nnsight_model(handle), handle.arch, handle.d_ff
        with _remote_job(handle), wrapped.trace(dict(inputs), **_run_options(handle)):
            if writes and plan is not None:
                _write_plan(wrapped, arch, d_ff, plan, "prompt", last)
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
    wrapped, arch, d_ff = nnsight_model(handle), handle.arch, handle.d_ff
    with warnings.catch_warnings(), torch.no_grad(), _remote_job(handle), \
            wrapped.generate(max_new_tokens=max_new_tokens, **generate_kwargs, **_run_options(handle)) as tracer:
        # A generation that ends early (EOS, cancel) leaves the step loop waiting for steps that
        # never come; nnsight warns and moves on, which is exactly what we want.
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        for plan in plans:
            with tracer.invoke(dict(inputs)):  # nnsight compiles this body: no `continue` inside
                _write_steps(tracer, wrapped, arch, d_ff, plan, max_new_tokens)
        with tracer.invoke():  # read in its own invoke: code after a step loop cut short by EOS never runs
            result = tracer.result.save()
    return result


def _write_steps(tracer: Any, wrapped: Any, arch: Architecture, d_ff: int, plan: EditPlan | None,
                 steps: int) -> None:
    if plan is None or plan.empty:
        return
    if not plan.decodes:  # a write outside a step loop applies to the prompt pass only
        _write_plan(wrapped, arch, d_ff, plan, "prompt", None)
        return
    for step in tracer.iter[:steps]:
        _write_plan(wrapped, arch, d_ff, plan, "prompt" if step == 0 else "decode", None)


# --- remote execution (NDIF, and the local dry run of the same round trip) -----------------------

def _run_options(handle: ModelHandle) -> dict[str, Any]:
    """The keyword arguments that send a trace or generation of `handle` where it runs: nothing
    for a local model, `remote=True` for NDIF, the dry-run backend for `--remote local`."""
    if handle.remote is None:
        return {}
    # NDIF has torch, transformers and nnsight, not this package: the functions a trace body calls
    # (site_proxy, apply_write, ...) and the classes it carries (EditPlan) must travel as source.
    # Registering the package makes cloudpickle ship every part of it the payload reaches by value.
    nnsight.register(PACKAGE)
    if handle.remote == "ndif":
        return {"remote": True}
    return {"backend": _DryRun(nnsight_model(handle))}


class _NotOnNdif(importlib.abc.MetaPathFinder):
    """While a dry run deserializes, importing this package fails as it would on NDIF."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] == PACKAGE:
            raise ModuleNotFoundError(f"No module named {fullname!r} (it is not installed on NDIF)", name=fullname)
        return None


class _DryRun(LocalSimulationBackend):
    """nnsight's local simulation of a remote run, made strict about this package.

    The simulation serializes the trace exactly as for NDIF, deserializes it with the modules
    that are not installed hidden, then runs it here. But this package *is* installed (pip or
    editable), so a payload that referred to it by name would still deserialize here and fail
    on the server; the finder above closes that gap. Hooks into `_hide_local_modules` /
    `_restore`, which bracket the deserialization (nnsight 0.8.1).
    """

    _finder = _NotOnNdif()

    def _hide_local_modules(self) -> dict:
        hidden = super()._hide_local_modules()
        sys.meta_path.insert(0, self._finder)
        return hidden

    def _restore(self, hidden: dict) -> None:
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        super()._restore(hidden)


@contextmanager
def _remote_job(handle: ModelHandle) -> Iterator[None]:
    """Around a remote trace: nnsight's job status lines go to stderr, since it prints them on
    stdout, where they would mix with the results (`--json`, pipes); failures become one-line
    `RemoteJobError`s. A local run passes through untouched."""
    if handle.remote is None:
        yield
        return
    import httpx
    import websocket
    from nnsight.intervention.backends.remote import RemoteError

    try:
        with redirect_stdout(sys.stderr):
            yield
    except (PicklingError, ImportError) as exc:
        # The job did not survive the serialization round trip NDIF would make: a bug of ours.
        raise RemoteJobError(f"this job cannot be sent to NDIF: {first_line(exc)}",
                             "please report it with the command line; it runs without --remote") from exc
    except RemoteError as exc:
        raise RemoteJobError(f"NDIF could not run the job: {first_line(exc)}",
                             "the message is NDIF's; a refused key or a model taken down shows here too "
                             "(NDIF's model list: `python -c 'import nnsight; print(nnsight.status())'`)") from None
    except (httpx.HTTPError, websocket.WebSocketException, OSError) as exc:
        if handle.remote != "ndif":
            raise
        raise RemoteJobError(f"NDIF at {ndif_account()[0]} did not take the job, or its answer was lost: "
                             f"{first_line(exc)}", "check the network and NDIF_HOST, then run the command again") from None


def ndif_account() -> tuple[str, str | None]:
    """(NDIF host, API key or None): `NDIF_HOST` / `NDIF_API_KEY` when set, else nnsight's
    config (the file `nnsight login` writes). nnsight reads the environment once, at import;
    reading it again here means a key exported later still counts, and it is written back to
    nnsight's config because that is where its remote backend looks."""
    config = nnsight.CONFIG.API
    config.HOST = os.environ.get("NDIF_HOST") or config.HOST
    config.APIKEY = os.environ.get("NDIF_API_KEY") or config.APIKEY
    return config.HOST, config.APIKEY or None


def remote_envoy(repo_id: str, tokenizer: Any) -> tuple[Any, Any]:
    """(nnsight model, its torch module) of hub id `repo_id`, built on the meta device: the config's
    module tree without weights (those stay on NDIF). Not dispatched, so nothing but the config
    is read, from the hub or its local cache."""
    envoy = nnsight.TransformersModel(repo_id, tokenizer=tokenizer, task="text-generation")
    return envoy, envoy._module


def remote_model_key(envoy: Any) -> str:
    """The key NDIF knows the model by (class, canonical hub id, revision, task). nnsight asks the
    hub for the canonical id once and caches it, so later traces do not ask again."""
    return envoy.to_model_key()

