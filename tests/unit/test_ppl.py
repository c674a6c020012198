"""Per-line perplexity against the model's own loss computed one line at a time."""

from __future__ import annotations

import math

import torch

from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.tasks.perplexity import line_perplexity


def test_line_perplexity_matches_unbatched_hf_loss(tiny_checkpoints):
    handle = load_model(tiny_checkpoints["llama"])
    lines = ["the cat sat.", "a much longer line of text, with commas.", "hi", "z"]
    got = line_perplexity(handle, lines, batch_size=3)
    nll, n = 0.0, 0
    for line in lines:
        ids = handle.tokenizer(line, return_tensors="pt")["input_ids"]
        if ids.shape[1] < 2:
            continue
        with torch.no_grad():
            loss = handle.model(input_ids=ids, labels=ids).loss.item()  # mean over ids.shape[1]-1
        nll += loss * (ids.shape[1] - 1)
        n += ids.shape[1] - 1
    assert got.n_tokens == n
    assert math.isclose(got.nll, nll, rel_tol=1e-5)
    assert math.isclose(got.value, math.exp(nll / n), rel_tol=1e-5)
