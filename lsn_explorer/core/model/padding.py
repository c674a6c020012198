"""Token rows of different lengths as one batch: right padding for scoring and training (every
row keeps positions 0..n-1, as in an unpadded run), left padding for generation (every row's next
token follows its own last real token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch


def right_padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [rows, width], attention mask [rows, width]) with `pad` after each row (CPU, long)."""
    return _padded(rows, pad, left=False)


def left_padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [rows, width], attention mask [rows, width]) with `pad` before each row (CPU, long)."""
    return _padded(rows, pad, left=True)


def _padded(rows: Sequence[Sequence[int]], pad: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if left else slice(0, len(r))
        input_ids[i, span], mask[i, span] = torch.tensor(list(r), dtype=torch.long), 1
    return input_ids, mask
