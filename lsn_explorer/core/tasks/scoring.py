"""Per-sample scoring of task examples, with and without interventions (SCIENCE.md §7).

- XNLI, base model: the three verbalised options ("premise, right? Yes|Also|No, hypothesis", with
  the words in the example's language) are scored by the log-likelihood of everything after
  "premise, right?"; the prediction is the most likely option, and the three log-likelihoods
  softmaxed give label probabilities.
- XNLI, classifier (a `*ForSequenceClassification` fine-tune): premise and hypothesis go through
  the tokenizer as a sentence pair, and the head's softmax, mapped to entailment / neutral /
  contradiction through `config.id2label`, gives the label probabilities.
- XQuAD and MKQA: greedy generation after a short prompt, cut at the first line break, scored by
  SQuAD v1.1 EM/F1 (plus the token-id variant) or MKQA's token F1.
- Any text: per-token log-probabilities and perplexity.
Baseline and intervened scores come from one batched run (generation) or one forward pass each
over identical tokens (log-likelihoods). Which function serves which task is `registry.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from lsn_explorer.core.progress import Cancel, stop_if_cancelled
from lsn_explorer.core.tasks import metrics
from lsn_explorer.errors import ModelLoadError, TaskFileError

if TYPE_CHECKING:
    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session

# "right?", then the entailment / neutral / contradiction words, per language (XNLI's languages).
XNLI_WORDS: dict[str, tuple[str, str, str, str]] = {
    "en": ("right", "Yes", "Also", "No"),
    "fr": ("correct", "Oui", "Aussi", "Non"),
    "es": ("correcto", "Sí", "Así que", "No"),
    "de": ("richtig", "Ja", "Auch", "Nein"),
    "vi": ("đúng", "Vâng", "Nên", "Không"),
    "zh": ("正确", "是的", "所以", "不是"),
    "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
    "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"),
    "ru": ("правильно", "Да", "Так", "Нет"),
    "ar": ("صحيح", "نعم", "لذا", "لا"),
    "tr": ("doğru", "Evet", "Ayrıca", "Hayır"),
    "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"),
    "el": ("σωστό", "Ναι", "Έτσι", "Όχι"),
    "bg": ("правилно", "да", "така", "не"),
    "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
}
ANSWER_TOKENS = 24  # new tokens generated for an extractive / open answer


@dataclass
class RowScore:
    """One row's result (baseline or intervened) on one sample."""

    label: str
    prediction: str
    correct: bool | None = None  # XNLI
    probabilities: list[float] = field(default_factory=list)  # XNLI: entailment, neutral, contradiction
    exact_match: float | None = None
    f1: float | None = None
    token_f1: float | None = None  # XQuAD faithful variant (token ids)
    perplexity: float | None = None  # text


@dataclass
class SampleScore:
    task: str
    lang: str
    sample: int
    example_id: str
    shown: dict[str, Any]  # what the sample is (premise/hypothesis, question, gold answers, text)
    rows: list[RowScore]
    record: int | None = None


def score_xquad(handle: ModelHandle, lang: str, example: Any, plans: Sequence[EditPlan | None], names: list[str],
                sample: int, cancel: Cancel | None = None) -> SampleScore:
    """A greedy answer after the passage (cut to fit the context) and the question; SQuAD EM/F1."""
    shown = describe_xquad(example)
    context, truncated = fit_context(handle, example.context, f"\nQuestion: {example.question}\nAnswer:")
    prompt = f"{context}\nQuestion: {example.question}\nAnswer:"
    shown |= {"context": context, "context_truncated": truncated}
    return _score_generated(handle, "xquad", lang, example.id, sample, prompt, shown["answers"], shown, plans, names,
                            cancel)


def score_mkqa(handle: ModelHandle, lang: str, example: Any, plans: Sequence[EditPlan | None], names: list[str],
               sample: int, cancel: Cancel | None = None) -> SampleScore:
    """A greedy answer to the question; MKQA's token F1 (long or missing answers are not scored)."""
    if not example.scorable:
        raise TaskFileError(f"MKQA sample {sample} ({example.example_id}) has a long or no answer",
                            "MKQA's F1 skips those; choose another sample")
    shown = describe_mkqa(example)
    return _score_generated(handle, "mkqa", lang, example.example_id, sample, f"Question: {example.query}\nAnswer:",
                            shown["answers"], shown, plans, names, cancel)


def describe_xnli(example: Any) -> dict[str, Any]:
    """Premise, hypothesis and gold label."""
    from lsn_explorer.core.tasks.xnli import LABELS

    return {"premise": example.premise, "hypothesis": example.hypothesis, "gold": LABELS[example.label]}


def describe_xquad(example: Any) -> dict[str, Any]:
    """Passage, question and the gold answers."""
    return {"context": example.context, "question": example.question, "answers": [a.text for a in example.answers]}


def describe_mkqa(example: Any) -> dict[str, Any]:
    """Question and every gold answer with its aliases."""
    return {"question": example.query,
            "answers": [text for a in example.answers for text in ((a.text,) if a.text else ()) + tuple(a.aliases)]}


def fit_context(handle: ModelHandle, context: str, rest: str) -> tuple[str, bool]:
    """Cut the passage so that passage + question + answer fit the model's context window (the
    demo model reads 128 tokens); the question is never cut. Returns (passage, whether cut)."""
    from lsn_explorer.core.model.loading import model_context

    window = model_context(handle)
    tok = handle.tokenizer
    ids = tok(context)["input_ids"]
    budget = (window or 10**9) - ANSWER_TOKENS - len(tok(rest, add_special_tokens=False)["input_ids"]) - 1
    if len(ids) <= budget:
        return context, False
    if budget < 8:
        raise TaskFileError(f"the question alone nearly fills the model's {window}-token context",
                            "use a model with a longer context")
    kept = tok.decode(ids[:budget], skip_special_tokens=True)
    while kept and len(tok(kept)["input_ids"]) > budget:  # re-tokenizing may merge differently
        kept = kept[:-1]
    return kept, True


def score_xnli(handle: ModelHandle, lang: str, ex: Any, plans: Sequence[EditPlan | None], names: list[str],
               sample: int, cancel: Cancel | None = None) -> SampleScore:
    """Label probabilities from the verbalised options' log-likelihoods, or from a classifier head."""
    from lsn_explorer.core.tasks.xnli import LABELS

    if handle.head == "classifier":
        return _score_xnli_head(handle, lang, ex, plans, names, sample, cancel)
    right, *words = XNLI_WORDS.get(lang, XNLI_WORDS["en"])
    context = f"{ex.premise}, {right}?"
    options = [f" {word}, {ex.hypothesis}" for word in words]
    rows = []
    for name, plan in zip(names, plans):
        stop_if_cancelled(cancel, "scoring")
        loglik = continuation_logliks(handle, context, options, plan)
        top = max(loglik)
        weights = [math.exp(x - top) for x in loglik]
        probs = [w / sum(weights) for w in weights]
        predicted = max(range(3), key=lambda k: loglik[k])
        rows.append(RowScore(name, LABELS[predicted], predicted == ex.label, probs))
    return SampleScore("xnli", lang, sample, ex.id, describe_xnli(ex), rows)


def _score_xnli_head(handle: ModelHandle, lang: str, ex: Any, plans: Sequence[EditPlan | None], names: list[str],
                     sample: int, cancel: Cancel | None = None) -> SampleScore:
    """XNLI through a classification head: one forward per plan over the same sentence-pair tokens."""
    import torch

    from lsn_explorer.core.model.backend import class_logits
    from lsn_explorer.core.tasks.xnli import LABELS

    order = head_label_order(handle)
    encoded = handle.tokenizer(ex.premise, ex.hypothesis, return_tensors="pt")
    # One unpadded sequence per forward: a decoder classifier pools the rightmost token that is not
    # config.pad_token_id, or the last position when that is unset (allowed for batch size 1 only),
    # so a lone unpadded pair is pooled at its final token however the checkpoint was saved.
    inputs = {key: encoded[key].to(handle.device) for key in ("input_ids", "attention_mask")}
    rows = []
    for name, plan in zip(names, plans):
        stop_if_cancelled(cancel, "scoring")
        head_probs = torch.softmax(class_logits(handle, inputs, plan)[0].float(), dim=-1)
        probs = [float(head_probs[k]) for k in order]
        predicted = max(range(3), key=probs.__getitem__)
        rows.append(RowScore(name, LABELS[predicted], predicted == ex.label, probs))
    return SampleScore("xnli", lang, sample, ex.id, describe_xnli(ex), rows)


def head_label_order(handle: ModelHandle) -> list[int]:
    """For entailment, neutral, contradiction: the index of that label among the head's logits.

    Names are matched case-insensitively (MNLI fine-tunes often say ENTAILMENT).

    Raises:
        ModelLoadError: the head does not have exactly those three labels.
    """
    from lsn_explorer.core.tasks.xnli import LABELS

    names = [name.lower() for name in handle.label_names]
    if sorted(names) != sorted(LABELS):
        raise ModelLoadError(
            f"the classification head of {handle.source} has labels {list(handle.label_names)}, "
            f"not {', '.join(LABELS)}",
            "XNLI needs a 3-way NLI head; set id2label in its config.json to those names",
        )
    return [names.index(label) for label in LABELS]


def continuation_logliks(handle: ModelHandle, context: str, options: Sequence[str],
                         plan: EditPlan | None = None) -> list[float]:
    """Summed log-probability of each option's tokens after `context` (one batched forward).

    Context and option are tokenized separately and joined, so every option is scored on the
    same context tokens.
    """
    import torch

    from lsn_explorer.core.model.backend import forward_logits
    from lsn_explorer.core.model.padding import right_padded

    tok = handle.tokenizer
    context_ids = tok(context)["input_ids"]
    option_ids = [tok(option, add_special_tokens=False)["input_ids"] for option in options]
    input_ids, mask = right_padded([context_ids + ids for ids in option_ids], tok.pad_token_id)
    logits = forward_logits(handle, {"input_ids": input_ids.to(handle.device), "attention_mask": mask.to(handle.device)},
                            plan).float()
    logprobs = torch.log_softmax(logits, dim=-1)
    out = []
    for i, ids in enumerate(option_ids):
        start = len(context_ids)
        positions = torch.arange(start - 1, start - 1 + len(ids))
        out.append(float(logprobs[i, positions, torch.tensor(ids)].sum()))
    return out


def _score_generated(handle: ModelHandle, task: str, lang: str, example_id: str, sample: int, prompt: str,
                     golds: list[str], shown: dict[str, Any], plans: Sequence[EditPlan | None],
                     names: list[str], cancel: Cancel | None = None) -> SampleScore:
    from lsn_explorer.core.generate import generate

    generation = generate(handle, prompt, plans, labels=names, max_new_tokens=ANSWER_TOKENS, cancel=cancel)
    stop_if_cancelled(cancel, "scoring")  # a cut-off answer is not a score
    tok = handle.tokenizer
    gold_ids = [tok(g, add_special_tokens=False)["input_ids"] for g in golds]
    rows = []
    for row in generation.rows:
        answer = row.text.strip().split("\n")[0].strip()
        if task == "xquad":
            pred_ids = tok(answer, add_special_tokens=False)["input_ids"]
            rows.append(RowScore(row.label, answer, exact_match=metrics.exact_match(answer, golds, lang),
                                 f1=metrics.f1(answer, golds, lang), token_f1=metrics.token_id_f1(pred_ids, gold_ids)))
        else:
            rows.append(RowScore(row.label, answer, exact_match=metrics.mkqa_exact_match(answer, golds, lang),
                                 f1=metrics.mkqa_f1(answer, golds, lang)))
    return SampleScore(task, lang, sample, example_id, shown, rows)


def score_text(handle: ModelHandle, text: str, plans: Sequence[EditPlan | None], names: Sequence[str]
               ) -> SampleScore:
    """Per-token log-probabilities and perplexity of `text` per plan."""
    from lsn_explorer.core.tasks.perplexity import line_perplexity

    rows = [RowScore(name, "", perplexity=line_perplexity(handle, [text], plan=plan).value)
            for name, plan in zip(names, plans)]
    return SampleScore("text", "", 0, "", {"text": text}, rows)


def record_score(session: Session, handle: ModelHandle, score: SampleScore, specs: list[str]) -> int:
    """Store a scored sample in the session history; returns the record id."""
    from lsn_explorer.session.provenance import provenance

    payload = {"task": score.task, "lang": score.lang, "sample": score.sample, "example_id": score.example_id,
               "shown": score.shown, "rows": [row.__dict__ for row in score.rows]}
    record = session.add("score", score.task, payload,
                         provenance(model=handle.provenance(), method="score", params={"interventions": specs}))
    score.record = record.id
    return record.id
