"""Text generation: one prompt, several rows (baseline ‖ intervened), one batched run, streamed.

`generate` continues one prompt once per row — a row is an `EditPlan` or None for the baseline —
in a single batched nnsight generation, so "with vs without" costs one run, not two. Sampling uses
`SeededSampler`: every row draws from its own generator seeded with the same seed, so rows see the
same random numbers and differ only where the intervention changed the distribution; each row
equals a separate run of that row alone. Tokens are handed out per row as they are produced
(`on_token`), and `stream` turns that into an iterator for UIs. A cancel event stops between steps.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from lsn_explorer.core.data.writing import script_mix
from lsn_explorer.core.progress import Cancel
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    import torch

    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session


@dataclass(frozen=True)
class TokenEvent:
    """New text of one row after a decoding step."""

    row: int
    step: int
    text: str


@dataclass
class Continuation:
    """What one row generated."""

    label: str
    specs: list[str]
    token_ids: list[int]
    text: str
    perplexity: float  # of the continuation under the plain model (how natural the text is)
    scripts: dict[str, float] = field(default_factory=dict)


@dataclass
class Generation:
    prompt: str
    rows: list[Continuation]
    max_new_tokens: int
    temperature: float
    seed: int
    cancelled: bool = False
    record: int | None = None


class SeededSampler:
    """Logits processor that samples each row with its own generator (same seed for all rows)
    and returns scores with only the drawn token left, so greedy selection takes it."""

    def __init__(self, temperature: float, seed: int) -> None:
        self.temperature, self.seed = temperature, seed
        self.generators: list[Any] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        if not self.generators:
            self.generators = [torch.Generator(device=scores.device).manual_seed(self.seed)
                               for _ in range(scores.shape[0])]
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        chosen = torch.stack([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators)])
        out = torch.full_like(scores, -float("inf"))
        return out.scatter_(1, chosen, 0.0)


class _RowStreamer:
    """transformers streamer protocol: first `put` is the prompt [rows, T], then one [rows] per step."""

    def __init__(self, rows: int, emit: Callable[[int, list[int]], None]) -> None:
        self.rows, self.emit, self.step, self.prompt_seen = rows, emit, 0, False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.emit(self.step, value.reshape(-1).tolist())
        self.step += 1

    def end(self) -> None:
        pass


class _Decoder:
    """Incremental decoding per row: emits only text that is complete (a byte-level BPE token can
    end inside a multi-byte character, which decodes to U+FFFD until the rest arrives)."""

    def __init__(self, tokenizer: Any, rows: int, eos: int | None) -> None:
        self.tokenizer, self.eos = tokenizer, eos
        self.ids: list[list[int]] = [[] for _ in range(rows)]
        self.sent = [0] * rows
        self.done = [False] * rows

    def add(self, row: int, token: int) -> str:
        if self.done[row]:
            return ""
        if token == self.eos:
            self.done[row] = True
            return ""
        self.ids[row].append(token)
        text = self.tokenizer.decode(self.ids[row], skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        new, self.sent[row] = text[self.sent[row]:], len(text)
        return new

    def flush(self, row: int) -> str:
        """Text still held back when generation stops: a character cut off by max_new_tokens stays
        U+FFFD, as in the final decoded text, so the streamed pieces add up to it."""
        text = self.tokenizer.decode(self.ids[row], skip_special_tokens=True)
        rest, self.sent[row] = text[self.sent[row]:], len(text)
        return rest


def check_prompt_fits(handle: ModelHandle, n_prompt: int, max_new_tokens: int) -> None:
    from lsn_explorer.core.model.loading import model_context

    context = model_context(handle)
    if context is not None and n_prompt + max_new_tokens > context:
        raise LsnError(f"the prompt is {n_prompt} tokens; with {max_new_tokens} new tokens that exceeds the "
                       f"model's context of {context}", "shorten the prompt or lower --max-new-tokens")


# Long on purpose: half of it is the docstring; the rest is one batched run that reads best in one piece.
def generate(
    handle: ModelHandle,
    prompt: str,
    rows: Sequence[EditPlan | None],
    *,
    labels: Sequence[str] | None = None,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    seed: int = 0,
    on_token: Callable[[TokenEvent], None] | None = None,
    cancel: Cancel | None = None,
) -> Generation:
    """Continue `prompt` once per row in one batched run (temperature 0 = greedy).

    Args:
        handle: the loaded model.
        prompt: the text to continue.
        rows: one EditPlan per row (None = no intervention).
        labels: display names of the rows (default "baseline" / the interventions' labels).
        max_new_tokens, temperature, seed: decoding settings, shared by every row.
        on_token: called with each row's new text after every step (from this thread); for a
            remote model all steps come at the end, since nothing streams back from NDIF.
        cancel: when set, generation stops after the current step (`cancelled` is then True);
            a remote generation cannot be stopped from here.
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

    from lsn_explorer.core.model.backend import generate_rows
    from lsn_explorer.core.tasks.perplexity import continuation_perplexity

    if not prompt.strip():
        raise LsnError("the prompt is empty", "type some text to continue")
    if max_new_tokens < 1:
        raise LsnError(f"--max-new-tokens must be at least 1 (got {max_new_tokens})", "e.g. --max-new-tokens 32")
    if temperature < 0:
        raise LsnError(f"temperature must be ≥ 0 (got {temperature})", "0 is greedy decoding")
    tok = handle.tokenizer
    inputs = tok(prompt, return_tensors="pt").to(handle.device)
    n_prompt = inputs["input_ids"].shape[1]
    check_prompt_fits(handle, n_prompt, max_new_tokens)
    decoder = _Decoder(tok, len(rows), tok.eos_token_id)

    def emit(step: int, tokens: list[int]) -> None:
        for row, token in enumerate(tokens):
            text = decoder.add(row, token)
            if text and on_token is not None:
                on_token(TokenEvent(row, step, text))

    class _Cancel(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            stop = cancel is not None and cancel.is_set()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    processors = LogitsProcessorList([SeededSampler(temperature, seed)] if temperature > 0 else [])
    # A streamer and a stopping criterion are callbacks into this process; on NDIF they would run
    # on the server, where neither the text nor the cancel event is.
    local = {} if handle.remote else {"stopping_criteria": StoppingCriteriaList([_Cancel()]),
                                      "streamer": _RowStreamer(len(rows), emit)}
    ids = generate_rows(handle, dict(inputs), list(rows), max_new_tokens=max_new_tokens, do_sample=False,
                        pad_token_id=tok.pad_token_id, logits_processor=processors, **local)
    if handle.remote:  # the same per-step text a streamer would have given, now that the tokens are here
        for step in range(n_prompt, ids.shape[1]):
            emit(step - n_prompt, ids[:, step].tolist())
    for row in range(len(rows)):
        rest = decoder.flush(row)
        if rest and on_token is not None:
            on_token(TokenEvent(row, max(0, len(decoder.ids[row]) - 1), rest))
    names = list(labels) if labels else [_label(plan) for plan in rows]
    out = []
    for row, plan in enumerate(rows):
        new = _until_eos(ids[row, n_prompt:].tolist(), tok.eos_token_id)
        text = tok.decode(new, skip_special_tokens=True)
        out.append(Continuation(names[row], [iv.spec for iv in plan.interventions] if plan else [], new, text,
                                continuation_perplexity(handle, inputs["input_ids"][0].tolist(), new).value,
                                script_mix(text)))
    return Generation(prompt, out, max_new_tokens, temperature, seed, cancelled=bool(cancel and cancel.is_set()))


def _label(plan: EditPlan | None) -> str:
    if plan is None or not plan.edits:
        return "baseline"
    return " + ".join(iv.label for iv in plan.interventions)


def _until_eos(ids: list[int], eos: int | None) -> list[int]:
    return ids[: ids.index(eos)] if eos is not None and eos in ids else ids


def stream(handle: ModelHandle, prompt: str, rows: Sequence[EditPlan | None], **kwargs: Any
           ) -> Iterator[TokenEvent | Generation]:
    """`generate` in a background thread, yielding TokenEvents as they come and the Generation
    last. Errors raised by the generation are re-raised here."""
    events: queue.Queue[Any] = queue.Queue()
    done = object()

    def work() -> None:
        try:
            events.put(generate(handle, prompt, rows, on_token=events.put, **kwargs))
        except BaseException as exc:  # handed to the consumer, raised there
            events.put(exc)
        finally:
            events.put(done)

    thread = threading.Thread(target=work, name="lsn-generate", daemon=True)
    thread.start()
    while (item := events.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def record_generation(session: Session, handle: ModelHandle, generation: Generation) -> int:
    """Store a generation in the session history; returns the record id."""
    from lsn_explorer.session.provenance import provenance

    payload = {
        "prompt": generation.prompt,
        "rows": [row.__dict__ for row in generation.rows],
        "max_new_tokens": generation.max_new_tokens,
        "temperature": generation.temperature,
        "seed": generation.seed,
        "cancelled": generation.cancelled,
    }
    specs = [spec for row in generation.rows for spec in row.specs]
    name = "compare" if len(generation.rows) > 1 else "generate"
    record = session.add("generation", name, payload,
                         provenance(model=handle.provenance(), method="generate", params={"interventions": specs},
                                    seed=generation.seed))
    generation.record = record.id
    return record.id


def continue_text(handle: ModelHandle, prompt: str, *, max_new_tokens: int = 32, temperature: float = 0.0,
                  seed: int = 0) -> str:
    """Continue `prompt` without interventions and return only the new text."""
    return generate(handle, prompt, [None], max_new_tokens=max_new_tokens, temperature=temperature,
                    seed=seed).rows[0].text
