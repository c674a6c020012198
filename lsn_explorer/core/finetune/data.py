"""Training examples of the three fine-tuning tasks, as token ids with loss labels, and batches.

- lm: one example per line of the language's corpus (the demo corpus by default), every token
  predicted. From a corpus folder (or the demo corpus) the held-out lines (every tenth,
  `corpora.is_heldout`) are left out, so `ppl` on the same folder measures unseen text; a single
  file given with `--train-data` is used whole.
- xnli: a classifier (`*ForSequenceClassification`) reads premise and hypothesis as a sentence
  pair and learns the label; a causal LM learns the verbalised correct option after
  "premise, right?" (the words of `scoring.XNLI_WORDS`), the loss on the option's tokens only.
- xquad: "passage\\nQuestion: q\\nAnswer:" then " answer\\n" (what `score_xquad` prompts for and
  cuts at), the loss on the answer's tokens only.
Lines and prompts longer than `max_len` lose the end of the passage/premise, never the answer.
`train_frac` keeps a seeded draw of the examples (Mondal et al.: 25 % of XNLI's training set, 80 % of
XQuAD's questions, the rest held out).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import torch

from lsn_explorer.core.finetune.config import FinetuneError, FinetuneSpec
from lsn_explorer.core.model.padding import right_padded
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle

IGNORE = -100  # the label of a token that is not predicted (torch's cross-entropy ignore_index)
HELDOUT_IDS = 5000  # the ids of examples left out by train_frac are recorded up to this many


@dataclass(frozen=True)
class Example:
    """Token ids and, per position, the id to predict there (IGNORE: none); or a class label."""

    input_ids: list[int]
    labels: list[int]
    label: int | None = None  # classifier: the index of the correct class among the head's logits

    @property
    def targets(self) -> int:
        """How many predictions the example's loss averages over (tokens, or one class)."""
        return 1 if self.label is not None else sum(1 for t in self.labels[1:] if t != IGNORE)


def training_examples(handle: ModelHandle, spec: FinetuneSpec) -> tuple[list[Example], dict[str, Any]]:
    """The examples `spec` trains on (after `train_frac`), and where they came from (provenance).

    Raises:
        CorpusError / TaskFileError / LanguageError: no training data for the language, or a bad file.
        FinetuneError: the task needs another head, or nothing is left to train on.
    """
    from dataclasses import replace

    from lsn_explorer.core.model.loading import model_context

    context = model_context(handle)
    if context is not None and spec.max_len > context:
        spec = replace(spec, max_len=context)  # positions beyond the context were never trained
    named: list[tuple[str, Example]]  # (example id, example); lm: the line's number
    if spec.task == "lm":
        handle.require("lm", "language-model fine-tuning")
        with _our_flag():
            lines, source = _lm_lines(spec)
        named = [(str(i), Example(ids, list(ids))) for i, ids in enumerate(_tokens(handle, lines, spec.max_len))]
    elif spec.task == "xnli":
        with _our_flag():
            rows, source = _task_examples("xnli", spec)
        named = [(ex.id, _xnli_example(handle, ex, spec)) for ex in rows]
    else:
        handle.require("lm", "generative XQuAD fine-tuning")
        with _our_flag():
            rows, source = _task_examples("xquad", spec)
        named = [(ex.id, _xquad_example(handle, ex, spec)) for ex in rows if ex.answers]
    named = [(ident, ex) for ident, ex in named if ex.targets > 0]
    kept = train_indices(len(named), spec.train_frac, spec.seed)
    if not kept:
        raise FinetuneError(f"no {spec.task} training examples for {spec.train_lang} in {source}",
                            "give --train-data with text (or task samples) in that language")
    chosen = [named[i][1] for i in kept]
    data = {"task": spec.task, "lang": spec.train_lang, "source": source, "examples": len(chosen),
            "of": len(named), "tokens": sum(len(ex.input_ids) for ex in chosen)}
    left_out = sorted(set(range(len(named))) - set(kept))
    if spec.task != "lm" and 0 < len(left_out) <= HELDOUT_IDS:
        data["heldout_ids"] = [named[i][0] for i in left_out]  # e.g. XQuAD's 20 %, to evaluate on
    return chosen, data


def check_data(spec: FinetuneSpec) -> str:
    """Read the training data without a model (commands call this before loading one, so a
    language without data fails at once); returns where the data is.

    Raises:
        CorpusError / TaskFileError / LanguageError / FinetuneError: as `training_examples`.
    """
    with _our_flag():
        rows, source = _lm_lines(spec) if spec.task == "lm" else _task_examples(spec.task, spec)
    if not rows:
        raise FinetuneError(f"no {spec.task} training examples for {spec.train_lang} in {source}",
                            "give --train-data with text (or task samples) in that language")
    return source


def train_indices(n: int, frac: float, seed: int) -> list[int]:
    """A seeded draw of ⌈frac · n⌉ of n examples, in their original order (all of them for 1.0)."""
    if frac >= 1:
        return list(range(n))
    count = math.ceil(frac * n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(order[:count].tolist())


def batches(order: Sequence[int], size: int) -> list[list[int]]:
    """`order` (example indices) cut into micro-batches of `size` (the last may be shorter)."""
    return [list(order[i:i + size]) for i in range(0, len(order), size)]


def collate(examples: Sequence[Example], pad_id: int, device: Any) -> dict[str, torch.Tensor]:
    """Right-padded input ids and attention mask (positions 0..n-1 as unpadded), with `labels`
    per token (IGNORE on padding) or `classes` for a classifier."""
    input_ids, mask = right_padded([ex.input_ids for ex in examples], pad_id)
    labels, _ = right_padded([ex.labels for ex in examples], IGNORE)
    out = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
    if examples[0].label is not None:
        out["classes"] = torch.tensor([ex.label for ex in examples], device=device)
    return out


@contextmanager
def _our_flag() -> Iterator[None]:
    """The loaders' hints name their commands' flags (--corpus, --data-dir); here it is --train-data."""
    try:
        yield
    except LsnError as exc:
        exc.hint = exc.hint.replace("--corpus", "--train-data").replace("--data-dir", "--train-data")
        raise


def _lm_lines(spec: FinetuneSpec) -> tuple[list[str], str]:
    from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR, corpus_file, read_lines, select

    given = spec.train_data
    if given is not None and given.startswith("hf:"):
        raise FinetuneError(f"--train-data {given}: language-model fine-tuning reads local text",
                            "give a corpus folder (<lang>.txt, FLORES files) or a text file")
    if given is not None and Path(given).is_file():
        return [line for line in read_lines(given) if line], str(given)
    path = corpus_file(spec.train_lang, DEMO_CORPUS_DIR if given is None else given)
    return select(read_lines(path), "train"), str(path)


def _task_examples(task: str, spec: FinetuneSpec) -> tuple[list[Any], str]:
    from lsn_explorer.core.tasks.registry import load_examples
    from lsn_explorer.core.tasks.xnli import load_xnli
    from lsn_explorer.core.tasks.xquad import load_xquad

    given = spec.train_data
    if given is not None and Path(given).is_file():
        return (load_xnli(given) if task == "xnli" else load_xquad(given)), str(given)
    # XNLI's training split is `train` (xnli/xnli_train_<lang>.tsv, or hf:xnli); XQuAD has one split.
    split = "train" if task == "xnli" and given is not None else "test"
    source = given or f"the demo {task} samples"
    return load_examples(task, spec.train_lang, given, split), source


def _tokens(handle: ModelHandle, texts: list[str], max_len: int) -> list[list[int]]:
    return [ids[:max_len] for ids in handle.tokenizer(texts)["input_ids"]] if texts else []


def _xnli_example(handle: ModelHandle, ex: Any, spec: FinetuneSpec) -> Example:
    from lsn_explorer.core.tasks.scoring import XNLI_WORDS, head_label_order

    if handle.head == "classifier":
        ids = handle.tokenizer(ex.premise, ex.hypothesis)["input_ids"][:spec.max_len]
        return Example(ids, [IGNORE] * len(ids), head_label_order(handle)[ex.label])
    right, *words = XNLI_WORDS.get(spec.train_lang, XNLI_WORDS["en"])
    return _prompted(handle, ex.premise, f", {right}?", f" {words[ex.label]}, {ex.hypothesis}", spec.max_len)


def _xquad_example(handle: ModelHandle, ex: Any, spec: FinetuneSpec) -> Example:
    return _prompted(handle, ex.context, f"\nQuestion: {ex.question}\nAnswer:", f" {ex.answers[0].text}\n", spec.max_len)


def _prompted(handle: ModelHandle, head: str, tail: str, target: str, max_len: int) -> Example:
    """`head + tail` as the prompt (no loss) and `target` after it (the loss), tokenized as the
    scorers do; too long, the end of `head` is cut and the tail and target kept."""
    tok = handle.tokenizer
    target_ids = tok(target, add_special_tokens=False)["input_ids"][:max_len - 1]
    room = max_len - len(target_ids)
    prompt = tok(head + tail)["input_ids"]
    if len(prompt) > room:
        tail_ids = tok(tail, add_special_tokens=False)["input_ids"]
        prompt = (tok(head)["input_ids"][:max(1, room - len(tail_ids))] + tail_ids)[:room]
    return Example(prompt + target_ids, [IGNORE] * len(prompt) + target_ids)
