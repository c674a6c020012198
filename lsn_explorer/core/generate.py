"""Text generation from a loaded model.

Greedy or sampled continuation of prompts with plain transformers `generate`. Side-by-side
generation with interventions builds on this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsn_explorer.core.model import ModelHandle


def continue_text(
    handle: ModelHandle,
    prompt: str,
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    seed: int = 0,
) -> str:
    """Continue `prompt` and return only the new text (special tokens dropped).

    temperature 0 is greedy decoding; otherwise multinomial sampling seeded with `seed`.
    """
    import torch

    inputs = handle.tokenizer(prompt, return_tensors="pt").to(handle.device)
    sampling = temperature > 0
    if sampling:
        torch.manual_seed(seed)
    with torch.no_grad():
        out = handle.model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            top_p=None,
            top_k=None,
            pad_token_id=handle.tokenizer.pad_token_id,
        )
    new_ids = out[0, inputs["input_ids"].shape[1]:]
    return handle.tokenizer.decode(new_ids, skip_special_tokens=True)
