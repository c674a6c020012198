"""What an evaluation stores: its rows, and one result per (language, row, sample). Torch-free.

A row is one column of the papers' tables: the un-intervened model ("none"), one grid value
(`lape=p90`: the set's neurons of the evaluated language set to that language's P90), a typed
`--intervene` row, or one seed of a random-neuron baseline matched to a grid row. Every sample's
result is kept (not only the cell's mean), so a cell's score can be recomputed and two runs
compared sample by sample; `summary.py` turns them into cells with confidence intervals.

Per-sample metric values, by task (all floats; a cell's score is their mean, except perplexity):
- xnli: accuracy (1.0 right, 0.0 wrong)
- xquad: f1, em (SQuAD v1.1, in %), token_f1, token_em (token-id variant, in %)
- mkqa: f1, em (MKQA's official normalisation, in %)
- ppl: nll (summed negative log-likelihood of the line's predicted tokens, nats), tokens (count);
  a cell's perplexity is exp(Σ nll / Σ tokens) over its samples
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RowKind = Literal["none", "grid", "intervene", "random"]

# The metric a task's table shows first, and every per-sample value it stores.
MAIN_METRIC: dict[str, str] = {"xnli": "accuracy", "xquad": "f1", "mkqa": "f1", "ppl": "perplexity"}
SAMPLE_VALUES: dict[str, tuple[str, ...]] = {
    "xnli": ("accuracy",),
    "xquad": ("f1", "em", "token_f1", "token_em"),
    "mkqa": ("f1", "em"),
    "ppl": ("nll", "tokens"),
}
# Higher is better for every metric but perplexity (the heat map's colours and Δ signs read this).
LOWER_IS_BETTER = frozenset({"perplexity"})


@dataclass(frozen=True)
class RowInfo:
    """One row of an evaluation (a column of its table).

    `key` is unique within the evaluation and is what per-sample results are stored under.
    `specs` are intervention specs in the compact syntax, with `{lang}` standing for the evaluated
    language (a grid row: `#12:{lang}=p90`); empty for "none". A random row has `base` = the key
    of the grid or intervene row it is matched to, and `seed` = which draw (1…K).
    """

    key: str
    kind: RowKind
    specs: tuple[str, ...] = ()
    value: str | None = None  # grid and random rows: zero | mean | p5 … p95 (a table column)
    set_name: str | None = None  # grid and random rows: the neuron set as the user named it
    base: str | None = None  # random rows: the row they are matched to
    seed: int | None = None  # random rows: 1…K

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "specs": list(self.specs), "value": self.value,
                "set_name": self.set_name, "base": self.base, "seed": self.seed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RowInfo":
        return cls(data["key"], data["kind"], tuple(data.get("specs", ())), data.get("value"),
                   data.get("set_name"), data.get("base"), data.get("seed"))


@dataclass(frozen=True)
class SampleResult:
    """One sample scored under one row, in one language."""

    lang: str
    row: str  # RowInfo.key
    sample: int  # index in the split (0-based)
    example_id: str
    values: dict[str, float]  # SAMPLE_VALUES[task]
    prediction: str = ""  # the predicted label / generated answer ("" for perplexity)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. XNLI label probabilities
