"""Last-token states of every depth for a list of sentences, computed once and kept in the session.

The latent-space analyses all start from the same tensor: per sentence, the state at its last
token at depth 0 (the embedding output) and after each decoder layer (raw layer outputs,
SCIENCE.md §8) — [sentences, n_layers + 1, d_model]. Computing it is the only slow part, so each
(model, text, intervention) result is stored once as a safetensors artifact of the session and
found again by a key over exactly those three things; switching between analyses, layers or plots
never runs the model again.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Sequence

import torch

from lsn_explorer.core.progress import Cancel, Progress, stop_if_cancelled
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session

STATES_KIND = "latent_states"  # record kind of a cached state tensor
STATES_VERSION = 1  # bump when what a cached tensor holds changes; older entries are then ignored


def text_states(handle: ModelHandle, sentences: Sequence[str], plan: EditPlan | None = None, *,
                batch_size: int = 32, progress: Progress | None = None, label: str = "",
                cancel: Cancel | None = None) -> torch.Tensor:
    """[sentences, n_layers + 1, d_model] float32: each sentence's last-token state at every depth,
    with `plan`'s prompt-phase writes active (an `@last` intervention writes the last token only).

    Batches are left-padded with position ids counted from each row's first real token, so a
    sentence's states do not depend on what it was batched with (also for absolute-position
    families). `progress(label, done, total)` counts sentences; a set `cancel` stops between
    batches with `Cancelled`.
    """
    from lsn_explorer.core.model.backend import read_layer_states

    if not sentences:
        raise LsnError("no sentences to read states from", "give parallel text with at least two lines")
    parts = []
    for start in range(0, len(sentences), batch_size):
        stop_if_cancelled(cancel, "reading latent states")
        chunk = list(sentences[start:start + batch_size])
        inputs = dict(handle.tokenizer(chunk, return_tensors="pt", padding=True))
        inputs["position_ids"] = (inputs["attention_mask"].cumsum(1) - 1).clamp(min=0)
        parts.append(read_layer_states(handle, {k: v.to(handle.device) for k, v in inputs.items()}, plan))
        if progress is not None:
            progress(label, min(start + batch_size, len(sentences)), len(sentences))
    return torch.cat(parts)


def states_key(handle: ModelHandle, sentences: Sequence[str], plan_key: str) -> str:
    """The cache key of one state tensor: the model's identity (source, precision, checkpoint
    fingerprint or revision, adapter), the exact text, and the pinned intervention specs."""
    text = hashlib.sha256("\n".join(sentences).encode()).hexdigest()
    identity = {"version": STATES_VERSION, "model": handle.provenance(), "text": text, "plan": plan_key}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def cached_states(session: Session | None, handle: ModelHandle, lang: str, sentences: Sequence[str],
                  plan: EditPlan | None, plan_key: str, *, batch_size: int = 32,
                  progress: Progress | None = None, label: str = "", cancel: Cancel | None = None
                  ) -> torch.Tensor:
    """`text_states`, read from the session when this (model, text, plan) was computed before and
    stored there otherwise (without a session, always computed)."""
    from lsn_explorer.session.provenance import provenance

    key = states_key(handle, sentences, plan_key)
    if session is not None:
        for record in session.records(STATES_KIND, lang):
            if record.payload.get("key") == key:
                return session.get_tensors(record.payload["artifact"])["states"]
    states = text_states(handle, sentences, plan, batch_size=batch_size, progress=progress, label=label,
                         cancel=cancel)
    if session is not None:
        digest = session.put_tensors({"states": states}, {"lang": lang, "plan": plan_key})
        session.add(STATES_KIND, lang, {"key": key, "plan": plan_key, "sentences": len(sentences),
                                        "depths": states.shape[1], "artifact": digest},
                    provenance(model=handle.provenance(), params={"plan": plan_key}))
    return states
