"""Perplexity of text under a model: per-line scoring with exact token accounting.

Each line is scored on its own, starting from the tokenizer's BOS, and every token of the line
is predicted (labels are shifted once, here, and nowhere else). Batches are right-padded so that
position ids are the plain 0..n-1 of an unpadded run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from lsn_explorer.core.model import ModelHandle


@dataclass(frozen=True)
class Perplexity:
    """Summed negative log-likelihood (nats) over `n_tokens` predicted tokens."""

    nll: float
    n_tokens: int

    @property
    def value(self) -> float:
        return math.exp(self.nll / self.n_tokens) if self.n_tokens else float("nan")


def line_perplexity(handle: ModelHandle, lines: Sequence[str], batch_size: int = 16) -> Perplexity:
    """Perplexity over `lines`, each scored independently from BOS (token-weighted)."""
    import torch

    tok = handle.tokenizer
    encoded = [ids for ids in tok(list(lines))["input_ids"] if len(ids) > 1]
    total_nll, total_tokens = 0.0, 0
    pad = tok.pad_token_id
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, ids in enumerate(chunk):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        input_ids, mask = input_ids.to(handle.device), mask.to(handle.device)
        with torch.no_grad():
            logits = handle.model(input_ids=input_ids, attention_mask=mask).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = input_ids[:, 1:]
        picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        valid = mask[:, 1:].bool()
        total_nll -= picked[valid].sum().item()
        total_tokens += int(valid.sum())
    return Perplexity(total_nll, total_tokens)
