"""lm-evaluation-harness on a loaded model, with an intervention plan active (optional extra `lmeval`).

`lm(handle, plan)` is an lm-eval `HFLM` built on the already loaded model whose two model calls
go through our backend: `_model_call` (every loglikelihood request) through `forward_logits`, and
`_model_generate` (generate_until) through `generate_rows`, so the `EditPlan`'s writes are active
in both. `evaluate` runs lm-eval tasks by name, local task YAMLs included (`include_path`).

What the plan's positions mean here: a scored text (context + continuation) is one prompt pass, so
`all` and `prompt` writes cover it and `generated` writes do not; in generation `generated` covers
the new tokens. `last` is refused for scoring: lm-eval's batches are right-padded and
`_model_call` is not told where each row ends.

lm_eval is imported lazily (never at module import); this module never imports nnsight.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Sequence

from lsn_explorer.core.interventions.spec import InterventionError
from lsn_explorer.errors import Cancelled, LsnError

if TYPE_CHECKING:
    import torch

    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle

INSTALL_HINT = "pip install 'lsn-explorer[lmeval]'"


def lm(handle: ModelHandle, plan: EditPlan | None = None, *, batch_size: int | str = 8,
       cancel: threading.Event | None = None, **hflm_kwargs: Any) -> Any:
    """An lm-eval `HFLM` over `handle`'s model with `plan`'s writes active in every model call.

    Args:
        handle: a loaded causal LM (`load_model`).
        plan: the interventions, resolved for this model (`resolve`); None or empty → plain HFLM.
        batch_size: requests per forward pass (or lm-eval's "auto").
        cancel: when set, the next model call raises `Cancelled` (a run stops between batches).
        **hflm_kwargs: passed on to `HFLM` (e.g. `max_length`, `add_bos_token`).

    Returns:
        an `lm_eval.models.huggingface.HFLM` subclass instance, usable with `simple_evaluate`.

    Raises:
        LsnError: lm-evaluation-harness is not installed.
        ModelLoadError: the model is a sequence classifier.
    """
    _require_lm_eval()
    handle.require("lm", "lm-evaluation-harness")
    cls = _intervened_hflm()
    return cls(handle, None if plan is None or plan.empty else plan, cancel,
               pretrained=handle.model, tokenizer=handle.tokenizer, batch_size=batch_size, **hflm_kwargs)


def evaluate(
    handle: ModelHandle,
    tasks: str | Sequence[str | dict[str, Any]],
    plan: EditPlan | None = None,
    *,
    include_path: str | Sequence[str] | None = None,
    builtin_tasks: bool = True,
    limit: int | float | None = None,
    num_fewshot: int | None = None,
    batch_size: int | str = 8,
    cancel: threading.Event | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run lm-eval tasks on `handle`'s model with `plan` active (`lm_eval.simple_evaluate`).

    Args:
        handle: a loaded causal LM.
        tasks: task or group names (or lm-eval task config dicts).
        plan: resolved interventions; None or empty → the plain model.
        include_path: folder(s) of extra task YAMLs (e.g. a local `dataset_path: json` task).
        builtin_tasks: also index lm-eval's own tasks (a few seconds); False for local tasks only.
        limit: at most this many documents per task (a fraction when < 1).
        num_fewshot: few-shot examples per prompt (the task's default when None).
        batch_size: requests per forward pass.
        cancel: when set, the run stops with `Cancelled` at the next model call.
        **options: passed on to `simple_evaluate` (e.g. `bootstrap_iters`, `log_samples`, `gen_kwargs`).

    Returns:
        lm-eval's result dict: "results" (metrics per task), "samples" (per document, with each
        request's response) unless `log_samples=False`, "configs", "versions", ...

    Raises:
        LsnError: lm-evaluation-harness is not installed.
    """
    _require_lm_eval()
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    paths = [include_path] if isinstance(include_path, str) else list(include_path or [])
    manager = TaskManager(include_path=paths or None, include_defaults=builtin_tasks)
    names = [tasks] if isinstance(tasks, str) else list(tasks)
    model = lm(handle, plan, batch_size=batch_size, cancel=cancel)
    results = simple_evaluate(model, tasks=names, num_fewshot=num_fewshot, limit=limit,
                              task_manager=manager, **options)
    return dict(results or {})  # None only on a non-zero rank of a distributed run


def _require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError as exc:
        raise LsnError("evaluating with lm-eval tasks needs lm-evaluation-harness, which is not installed",
                       INSTALL_HINT) from exc


@functools.cache
def _intervened_hflm() -> type:
    """The HFLM subclass, built once on first use (defining it needs lm_eval imported)."""
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.models.utils_hf import stop_sequences_criteria

    from lsn_explorer.core.model.backend import forward_logits, generate_rows

    class InterventionHFLM(HFLM):  # type: ignore[misc]
        """HFLM whose forward passes and generations carry an `EditPlan`'s writes."""

        def __init__(self, handle: ModelHandle, plan: EditPlan | None, cancel: threading.Event | None,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.handle, self.plan, self.cancel = handle, plan, cancel
            self._writes_last = plan is not None and any(
                write.last_mult is not None for writes in plan.writes["prompt"].values() for write in writes)

        def _check_cancel(self) -> None:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled("the lm-eval run was cancelled")

        def _autocast(self) -> Any:
            return torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                  enabled=self.mixed_precision_dtype is not None)

        def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None,
                        labels: torch.Tensor | None = None) -> torch.Tensor:
            """Logits [batch, seq, vocab] of right-padded `inps`. The padding sits after each row's
            tokens, so a causal model's logits at real positions do not depend on it (as in HFLM)."""
            self._check_cancel()
            if self._writes_last:
                raise InterventionError("an @last intervention cannot be applied to lm-eval's scoring batches",
                                        "use @all or @prompt (the whole scored text), or a generate_until task")
            inputs = {"input_ids": inps, "attention_mask": torch.ones_like(inps)}
            with self._autocast():
                return forward_logits(self.handle, inputs, self.plan)

        def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str],
                            **generation_kwargs: Any) -> torch.Tensor:
            """Left-padded `context` [batch, T] (+ `attention_mask`) → token ids [batch, T + new]."""
            self._check_cancel()
            if self.plan is None:
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
            kwargs = dict(generation_kwargs)
            mask = kwargs.pop("attention_mask", None)
            # lm-eval's greedy default, as in HFLM._model_generate: temperature 0 means do_sample=False.
            if kwargs.setdefault("temperature", 0.0) == 0.0 and kwargs.get("do_sample") is None:
                kwargs["do_sample"] = False
            if kwargs.get("do_sample") is False and kwargs["temperature"] == 0.0:
                kwargs.pop("temperature")
            new_tokens = max_length - context.shape[1]
            if new_tokens <= 0:
                return context
            inputs = {"input_ids": context, "attention_mask": torch.ones_like(context) if mask is None else mask}
            criteria = stop_sequences_criteria(self.tokenizer, stop, context.shape[1], context.shape[0])
            with self._autocast():
                return generate_rows(self.handle, inputs, [self.plan], max_new_tokens=new_tokens,
                                     stopping_criteria=criteria, pad_token_id=self.tokenizer.pad_token_id,
                                     use_cache=True, **kwargs)

    return InterventionHFLM


__all__ = ["lm", "evaluate", "INSTALL_HINT"]
