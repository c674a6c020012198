"""The masked-LoRA training loop: `finetune(session, handle, spec)` trains, checkpoints, stores the adapter.

AdamW with β (0.95, 0.999) and the spec's weight decay, a linear schedule with warm-up (the
learning rate climbs from 0 over the first `warmup` fraction of steps, then falls linearly to 0,
as transformers' `get_linear_schedule_with_warmup`), gradient-norm clipping, and `grad_accum`
micro-batches per optimizer step. A step's loss is the mean over all the predicted tokens (or
classified examples) of its micro-batches, so accumulation does not change what is averaged.

The data order is a function of (seed, epoch): step k always sees the same examples, so a run
resumed from the checkpoint of step s (`checkpoints.py`) does steps s+1 … exactly as the
uninterrupted run would, and ends after the same number of optimizer steps. A run's checkpoints
live in `<session>/finetune/<name>-<spec key>/` and are removed once the adapter is recorded.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from lsn_explorer.core.finetune import checkpoints
from lsn_explorer.core.finetune.config import BETAS, FinetuneError, FinetuneSpec
from lsn_explorer.core.finetune.data import IGNORE, Example, batches, collate, training_examples
from lsn_explorer.core.progress import Cancel, Progress
from lsn_explorer.errors import Cancelled

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session

RUNS = "finetune"  # the session subfolder holding runs' checkpoints
RECORDED_LOSSES = 2000  # loss-curve points kept in an adapter's record


@dataclass(frozen=True)
class StepReport:
    """One finished optimizer step, for progress displays and loss curves."""

    step: int
    total: int
    loss: float
    lr: float
    tokens: int  # training tokens seen since the run began (every attempt)
    tokens_per_s: float  # in this attempt
    losses: list[list[float]] = field(default_factory=list, repr=False)  # [step, loss] so far, every attempt


@dataclass
class FinetuneResult:
    """What a fine-tune produced: the adapter record and how the training went."""

    name: str
    record: int
    folder: str
    steps: int
    final_loss: float | None
    losses: list[list[float]] = field(default_factory=list)  # [step, loss] per optimizer step
    tokens: int = 0
    seconds: float = 0.0
    resumed_from: int = 0  # the checkpoint's step this attempt started from (0: from scratch)
    skipped: bool = False  # the same adapter was already in the session; nothing was trained


def run_dir(session: Session, spec: FinetuneSpec) -> Path:
    """Where the checkpoints of `spec`'s run live."""
    return session.folder / RUNS / f"{spec.adapter_name()}-{spec.key()}"


def total_steps(n_examples: int, spec: FinetuneSpec) -> int:
    """Optimizer steps of the run: `max_steps` when given, else epochs × ⌈⌈n / batch⌉ / grad_accum⌉."""
    return spec.max_steps if spec.max_steps is not None else spec.epochs * _steps_per_epoch(n_examples, spec)


def step_batches(step: int, n_examples: int, spec: FinetuneSpec) -> list[list[int]]:
    """The micro-batches (example indices) of optimizer step `step` (0-based): epoch e's order is
    a permutation seeded by (seed, e), cut into batches, `grad_accum` batches per step."""
    epoch, local = divmod(step, _steps_per_epoch(n_examples, spec))
    order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(spec.seed * 1_000_003 + epoch))
    return batches(order.tolist(), spec.batch)[local * spec.grad_accum:(local + 1) * spec.grad_accum]


def lr_factor(step: int, total: int, warmup: float) -> float:
    """The learning-rate multiplier at optimizer step `step`: linear warm-up from 0 over
    ⌈warmup · total⌉ steps, then linear decay to 0 at `total`."""
    ramp = math.ceil(warmup * total)
    if step < ramp:
        return step / ramp
    return max(0.0, (total - step) / max(1, total - ramp))


def load_base(session: Session, model: str | None, spec: FinetuneSpec, *, dtype: str = "auto",
              device: str = "auto") -> ModelHandle:
    """The base model a fine-tune trains: `model`, else the one the session's records were made
    with (its neuron sets index that model's neurons), else the demo; in 4-bit exactly when
    `spec.four_bit`.

    Raises:
        ModelLoadError: as `load_model` (4-bit without bitsandbytes, or shapes its CPU kernels cannot run).
    """
    from lsn_explorer.core.model.loading import load_model
    from lsn_explorer.core.model.session_model import session_model_source

    recorded = session_model_source(session) if model is None else None
    return load_model(recorded[0] if recorded else model, dtype=dtype, four_bit=spec.four_bit, device=device)


def finetune(session: Session, handle: ModelHandle, spec: FinetuneSpec, *, progress: Progress | None = None,
             cancel: Cancel | None = None, report: Callable[[StepReport], None] | None = None,
             warn: Callable[[str], None] | None = None) -> FinetuneResult:
    """Train `spec`'s masked LoRA on `handle`'s model and store the adapter in `session`.

    A run continues from its newest checkpoint when there is one (a killed or cancelled run);
    an adapter already trained from the same spec on the same model is returned as `skipped`.
    Afterwards `handle.model` carries the trained LoRA (in place, as peft injects it) and
    `handle.adapter` names it; after a failure it carries a partly trained one: load the model again.

    Args:
        session: where neuron sets are read and checkpoints and the adapter are written.
        handle: the base model, loaded in 4-bit exactly when `spec.four_bit`.
        spec: what to train.
        progress: `progress(label, done, total)` after every optimizer step.
        cancel: set → checkpoint the last finished step, then raise `Cancelled`.
        report: a `StepReport` after every optimizer step (loss, learning rate, tokens/s).
        warn: non-fatal problems (a damaged checkpoint skipped).

    Raises:
        FinetuneError: a bad neuron set, no module to train, a model in another precision than the
            spec, changed training data, or a full disk (a checkpoint or the adapter not written).
        CorpusError / TaskFileError / LanguageError: no training data for the language.
        Cancelled: `cancel` was set; the last finished step is checkpointed.
    """
    from lsn_explorer.core.finetune.adapters import finished_adapter, save_adapter
    from lsn_explorer.core.finetune.masks import add_masked_lora, fold, neuron_mask

    _check_handle(handle, spec)
    mask = neuron_mask(session, handle, spec)
    examples, data = training_examples(handle, spec)
    name, model_info = spec.adapter_name(), handle.provenance()
    done = finished_adapter(session, spec, model_info)
    if done is not None:
        p: dict[str, Any] = done.payload
        return FinetuneResult(name, done.id, p["folder"], p.get("steps", 0), p.get("final_loss"), p.get("losses", []),
                              p.get("tokens", 0), p.get("seconds", 0.0), skipped=True)
    _prepare(handle)
    cuda = [handle.device] if handle.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # peft draws lora_A at random: seeded, so a run can be repeated
        torch.manual_seed(spec.seed)
        peft_model, targets, hooks = add_masked_lora(handle, spec, mask)
    try:
        run = _Run(session, handle, peft_model, spec, examples, data, warn)
        run.train(progress, cancel, report)
        fold(handle.model, targets)
    finally:
        for hook in hooks:
            hook.remove()
        handle.model.eval()
    final_loss = run.losses[-1][1] if run.losses else None
    summary = {"steps": run.total, "final_loss": final_loss, "losses": thinned(run.losses), "tokens": run.tokens,
               "seconds": round(run.seconds, 1)}
    record = save_adapter(session, handle, peft_model, spec, mask, summary, data)
    shutil.rmtree(run_dir(session, spec), ignore_errors=True)  # recorded: its checkpoints are spent
    handle.adapter, handle.traced = name, None
    return FinetuneResult(name, record.id, record.payload["folder"], run.total, final_loss, run.losses,
                          run.tokens, run.seconds, resumed_from=run.resumed_from)


class _Run:
    """One attempt at a run: the optimizer, the schedule and the loop, resumable by checkpoint."""

    def __init__(self, session: Session, handle: ModelHandle, peft_model: Any, spec: FinetuneSpec,
                 examples: list[Example], data: dict[str, Any], warn: Callable[[str], None] | None) -> None:
        self.handle, self.model, self.spec, self.examples, self.data = handle, peft_model, spec, examples, data
        self.folder = run_dir(session, spec)
        self.named = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
        self.names = list(self.named)
        self.optimizer = torch.optim.AdamW(list(self.named.values()), lr=spec.lr, betas=BETAS,
                                           weight_decay=spec.weight_decay)
        self.total = total_steps(len(examples), spec)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.total, spec.warmup))
        self.step, self.tokens, self.seconds = 0, 0, 0.0
        self.losses: list[list[float]] = []
        self.resumed_from = 0
        state = checkpoints.load_checkpoint(self.folder, self.named, self.optimizer, self.names, warn)
        if state is not None:
            if state.get("data") != data or state.get("total") != self.total:
                raise FinetuneError(f"the training data of {spec.adapter_name()!r} changed since its checkpoint "
                                    f"of step {state['step']}",
                                    f"restore the data, or remove {self.folder} to train from the start")
            self.scheduler.load_state_dict(state["scheduler"])
            self.step = self.resumed_from = int(state["step"])
            self.losses, self.tokens, self.seconds = state["losses"], int(state["tokens"]), float(state["seconds"])

    def train(self, progress: Progress | None, cancel: Cancel | None, report: Callable[[StepReport], None] | None) -> None:
        label = f"train {self.spec.train_lang}"
        started, tokens_before, saved = time.monotonic(), self.tokens, self.step
        pad = self.handle.tokenizer.pad_token_id
        self.model.train()
        while self.step < self.total:
            if cancel is not None and cancel.is_set():
                if self.step > saved:
                    self.checkpoint(time.monotonic() - started)
                raise Cancelled(f"fine-tuning {self.spec.adapter_name()!r} was cancelled after step {self.step} of "
                                f"{self.total}", "run it again (or `jobs resume`) to continue from there")
            groups = [[self.examples[i] for i in indices] for indices in step_batches(self.step, len(self.examples), self.spec)]
            targets = sum(ex.targets for group in groups for ex in group)
            loss = 0.0
            for group in groups:
                batch = collate(group, pad, self.handle.device)
                part = _loss(self.model, batch) / targets
                part.backward()
                loss += float(part.detach())
                self.tokens += int(batch["attention_mask"].sum())
            torch.nn.utils.clip_grad_norm_(list(self.named.values()), self.spec.clip)
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.losses.append([self.step, round(loss, 6)])
            elapsed = time.monotonic() - started
            if self.step % self.spec.checkpoint_every == 0 and self.step < self.total:
                self.checkpoint(elapsed)
                saved = self.step
            speed = (self.tokens - tokens_before) / elapsed if elapsed > 0 else 0.0
            if report is not None:
                report(StepReport(self.step, self.total, loss, lr, self.tokens, speed, self.losses))
            if progress is not None:
                progress(label, self.step, self.total)
        self.seconds += time.monotonic() - started

    def checkpoint(self, elapsed: float) -> None:
        state = {"key": self.spec.key(), "total": self.total, "data": self.data, "scheduler": self.scheduler.state_dict(),
                 "losses": self.losses, "tokens": self.tokens, "seconds": self.seconds + elapsed}
        checkpoints.save_checkpoint(self.folder, self.step, self.named, self.optimizer, self.names, state)


def thinned(losses: list[list[float]], points: int = RECORDED_LOSSES) -> list[list[float]]:
    """At most about `points` of a loss curve, evenly spaced, the last step always kept (a record
    stays small however long the run)."""
    if len(losses) <= points:
        return losses
    every = math.ceil(len(losses) / points)
    return losses[::every] + ([losses[-1]] if (len(losses) - 1) % every else [])


def _loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed cross-entropy of a micro-batch: over its predicted tokens, or its examples' classes."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    if "classes" in batch:
        return torch.nn.functional.cross_entropy(logits, batch["classes"], reduction="sum")
    predicted = logits[:, :-1].reshape(-1, logits.shape[-1])
    return torch.nn.functional.cross_entropy(predicted, batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE,
                                             reduction="sum")


def _steps_per_epoch(n_examples: int, spec: FinetuneSpec) -> int:
    return math.ceil(math.ceil(n_examples / spec.batch) / spec.grad_accum)


def _check_handle(handle: ModelHandle, spec: FinetuneSpec) -> None:
    if handle.adapter is not None:
        raise FinetuneError(f"the model already carries adapter {handle.adapter!r}",
                            "fine-tune the base model: load it again without --adapter")
    if spec.four_bit != (handle.quantization == "nf4"):
        raise FinetuneError(f"the spec asks for a {'4-bit' if spec.four_bit else 'full-precision'} base, and "
                            f"{handle.source} is loaded {'in 4-bit' if handle.quantization else 'in full precision'}",
                            "load the model with --4bit exactly when the fine-tune uses it")


def _prepare(handle: ModelHandle) -> None:
    """QLoRA's preparation of a 4-bit base (peft: norms in fp32, inputs that need gradients), and
    the pad id a classifier pools by."""
    if handle.quantization is not None:
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(handle.model, use_gradient_checkpointing=handle.device.type == "cuda")
    if handle.head == "classifier" and handle.model.config.pad_token_id is None:
        handle.model.config.pad_token_id = handle.tokenizer.pad_token_id
