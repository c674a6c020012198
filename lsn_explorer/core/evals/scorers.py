"""Batched scoring of task samples under one edit plan: what an evaluation's cells are made of.

One call scores a batch of samples of one language under one plan (None = no intervention) and
returns a `SampleResult` per sample (its `row` is left empty; the runner fills it in):
- XNLI, base model: the three verbalised options of every sample in ONE right-padded forward
  (B × 3 sequences), the same log-likelihoods `core.tasks.scoring` computes one sample at a time.
  Classifier: the batch's sentence pairs in one forward (one at a time when the model has no pad
  token, since a decoder classifier then cannot find a padded row's last token).
- XQuAD / MKQA: greedy generation of the whole batch in one run with left padding, cut at the
  first line break, scored with SQuAD v1.1 EM/F1 and the token-id variant, or MKQA's F1.
- ppl: each line's summed negative log-likelihood and token count, one right-padded forward.

Protocols (`EvalSpec.protocol`): "consistent" is what `lsn-explorer score` does; "faithful" follows
the papers' code where it differs — Mondal et al.'s XNLI classifier input `premise {eos} hypothesis`
(a classification head only), their XQuAD answers kept whole up to EOS (not cut at a line break;
the token-id EM/F1 is their metric), and Tezuka et al.'s MKQA prompt `{question}? Answer: `
(localised "Answer", 10 new tokens).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from lsn_explorer.core.evals.results import SampleResult
from lsn_explorer.core.model.padding import left_padded, right_padded
from lsn_explorer.core.tasks import metrics
from lsn_explorer.errors import LsnError, TaskFileError

if TYPE_CHECKING:
    import torch

    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle

Batch = Sequence[tuple[int, Any]]  # (sample index in the split, example)

# Tezuka et al.'s MKQA prompt ends in the language's word for "Answer" (their code's table, for the
# languages they evaluate and a few more); other languages fall back to English.
ANSWER_WORDS: dict[str, str] = {
    "en": "Answer", "ja": "答え", "nl": "Antwoord", "ko": "답변", "it": "Risposta", "fr": "Réponse",
    "de": "Antwort", "es": "Respuesta", "zh": "答案", "ru": "Ответ", "ar": "الإجابة", "hi": "उत्तर",
    "pt": "Resposta", "vi": "Trả lời", "th": "คำตอบ", "tr": "Cevap", "sv": "Svar", "pl": "Odpowiedź",
}
FAITHFUL_MKQA_TOKENS = 10  # Tezuka et al. generate 5–10 new tokens; we take the upper end


def load_samples(task: str, lang: str, data_dir: str | None, split: str, limit: int | None) -> list[tuple[int, Any]]:
    """The (index, example) pairs an evaluation scores in `lang`: every sample of the split, or the
    first `limit`. MKQA keeps only samples with a short answer (its F1 skips the others); for
    `ppl` the examples are text lines (the demo corpus's held-out lines, or FLORES files / hub).

    Raises:
        TaskFileError / LanguageError: no data for that language, or an empty or malformed file.
    """
    if task == "ppl":
        from lsn_explorer.core.tasks import perplexity

        try:
            lines = perplexity.load_lines(lang, data_dir)
        except LsnError as exc:  # the corpus commands' hints name --corpus; here the flag is --data-dir
            raise type(exc)(exc.message, exc.hint.replace("--corpus", "--data-dir")) from None
        examples: list[Any] = [line for line in lines if line.strip()]
    else:
        from lsn_explorer.core.tasks.registry import load_examples

        examples = load_examples(task, lang, data_dir, split)
    pairs = [(i, ex) for i, ex in enumerate(examples) if task != "mkqa" or ex.scorable]
    if not pairs:
        raise TaskFileError(f"{task} has no {'scorable ' if task == 'mkqa' else ''}samples for {lang}"
                            f"{' in ' + str(data_dir) if data_dir else ''}", "check the data file for that language")
    return pairs[:limit] if limit is not None else pairs


def score_batch(handle: ModelHandle, task: str, lang: str, batch: Batch, plan: EditPlan | None,
                protocol: str = "consistent") -> list[SampleResult]:
    """Score `batch` under `plan` (module doc); one result per sample, in batch order."""
    if task == "xnli":
        if handle.head == "classifier":
            return _xnli_head(handle, lang, batch, plan, protocol)
        if protocol == "faithful":
            raise LsnError("the faithful XNLI protocol (Mondal et al.) reads a classification head, and this model "
                           "is a causal LM", "load an XNLI/MNLI *ForSequenceClassification checkpoint with --model, "
                           "or use --protocol consistent (verbalised options)")
        return _xnli_options(handle, lang, batch, plan)
    if task == "ppl":
        return _lines(handle, lang, batch, plan)
    return _answers(handle, task, lang, batch, plan, protocol)


def _xnli_options(handle: ModelHandle, lang: str, batch: Batch, plan: EditPlan | None) -> list[SampleResult]:
    import torch

    from lsn_explorer.core.model.backend import forward_logits
    from lsn_explorer.core.tasks.scoring import XNLI_WORDS
    from lsn_explorer.core.tasks.xnli import LABELS

    tok = handle.tokenizer
    right, *words = XNLI_WORDS.get(lang, XNLI_WORDS["en"])
    contexts = tok([f"{ex.premise}, {right}?" for _, ex in batch])["input_ids"]
    options = tok([f" {word}, {ex.hypothesis}" for _, ex in batch for word in words],
                  add_special_tokens=False)["input_ids"]
    sequences = [(contexts[i // 3], options[i]) for i in range(len(options))]
    input_ids, mask = right_padded([c + o for c, o in sequences], tok.pad_token_id)
    logprobs = torch.log_softmax(forward_logits(handle, _on(handle, input_ids, mask), plan).float(), dim=-1)
    loglik = []
    for row, (context, option) in enumerate(sequences):
        positions = torch.arange(len(context) - 1, len(context) - 1 + len(option))
        loglik.append(float(logprobs[row, positions, torch.tensor(option)].sum()))
    out = []
    for i, (sample, ex) in enumerate(batch):
        scores = loglik[3 * i: 3 * i + 3]
        top = max(scores)
        weights = [math.exp(x - top) for x in scores]
        predicted = max(range(3), key=lambda k: scores[k])
        out.append(SampleResult(lang, "", sample, ex.id, {"accuracy": float(predicted == ex.label)}, LABELS[predicted],
                                {"probabilities": [w / sum(weights) for w in weights], "gold": LABELS[ex.label]}))
    return out


def _xnli_head(handle: ModelHandle, lang: str, batch: Batch, plan: EditPlan | None, protocol: str
               ) -> list[SampleResult]:
    import torch

    from lsn_explorer.core.model.backend import class_logits
    from lsn_explorer.core.tasks.scoring import head_label_order
    from lsn_explorer.core.tasks.xnli import LABELS

    tok = handle.tokenizer
    order = head_label_order(handle)
    if protocol == "faithful":  # Mondal et al. join the pair with the EOS token as text
        encoded = [tok(f"{ex.premise} {tok.eos_token} {ex.hypothesis}")["input_ids"] for _, ex in batch]
    else:
        encoded = [tok(ex.premise, ex.hypothesis)["input_ids"] for _, ex in batch]
    pad = getattr(handle.model.config, "pad_token_id", None)
    groups = [encoded] if pad is not None else [[ids] for ids in encoded]
    probs: list[list[float]] = []
    for group in groups:
        input_ids, mask = right_padded(group, pad if pad is not None else 0)
        head = torch.softmax(class_logits(handle, _on(handle, input_ids, mask), plan).float(), dim=-1)
        probs += [[float(row[k]) for k in order] for row in head]
    out = []
    for (sample, ex), p in zip(batch, probs):
        predicted = max(range(3), key=p.__getitem__)
        out.append(SampleResult(lang, "", sample, ex.id, {"accuracy": float(predicted == ex.label)}, LABELS[predicted],
                                {"probabilities": p, "gold": LABELS[ex.label]}))
    return out


def _answers(handle: ModelHandle, task: str, lang: str, batch: Batch, plan: EditPlan | None, protocol: str
             ) -> list[SampleResult]:
    """XQuAD / MKQA: one batched greedy generation, left-padded, every row under `plan`."""
    from lsn_explorer.core.model.backend import generate_rows
    from lsn_explorer.core.tasks.scoring import ANSWER_TOKENS, describe_mkqa, describe_xquad, fit_context

    tok = handle.tokenizer
    prompts, golds, ids_of = [], [], []
    new_tokens = ANSWER_TOKENS
    for _, ex in batch:
        if task == "xquad":
            rest = f"\nQuestion: {ex.question}\nAnswer:"
            context, _ = fit_context(handle, ex.context, rest)
            prompts.append(context + rest)
            golds.append(describe_xquad(ex)["answers"])
            ids_of.append(ex.id)
        else:
            if protocol == "faithful":
                prompts.append(f"{ex.query.rstrip('?？ ')}? {ANSWER_WORDS.get(lang, 'Answer')}: ")
                new_tokens = FAITHFUL_MKQA_TOKENS
            else:
                prompts.append(f"Question: {ex.query}\nAnswer:")
            golds.append(describe_mkqa(ex)["answers"])
            ids_of.append(ex.example_id)
    encoded = tok(prompts)["input_ids"]
    width = max(len(ids) for ids in encoded)
    input_ids, mask = left_padded(encoded, tok.pad_token_id)
    generated = generate_rows(handle, _on(handle, input_ids, mask), [plan], max_new_tokens=new_tokens,
                              do_sample=False, pad_token_id=tok.pad_token_id)
    out = []
    for i, (sample, _) in enumerate(batch):
        new = generated[i, width:].tolist()
        if tok.eos_token_id in new:
            new = new[: new.index(tok.eos_token_id)]
        answer = tok.decode(new, skip_special_tokens=True).strip()
        if not (task == "xquad" and protocol == "faithful"):  # Mondal et al. keep everything up to EOS
            answer = answer.split("\n")[0].strip()
        if task == "xquad":
            pred_ids = tok(answer, add_special_tokens=False)["input_ids"]
            gold_ids = [tok(g, add_special_tokens=False)["input_ids"] for g in golds[i]]
            values = {"f1": 100 * metrics.f1(answer, golds[i], lang), "em": 100 * metrics.exact_match(answer, golds[i], lang),
                      "token_f1": 100 * metrics.token_id_f1(pred_ids, gold_ids),
                      "token_em": 100 * metrics.token_id_exact_match(pred_ids, gold_ids)}
        else:
            values = {"f1": 100 * metrics.mkqa_f1(answer, golds[i], lang),
                      "em": 100 * metrics.mkqa_exact_match(answer, golds[i], lang)}
        out.append(SampleResult(lang, "", sample, ids_of[i], values, answer, {"golds": golds[i][:8]}))
    return out


def _lines(handle: ModelHandle, lang: str, batch: Batch, plan: EditPlan | None) -> list[SampleResult]:
    """Each line from BOS, every token predicted (as `core.tasks.perplexity` scores lines)."""
    import torch

    from lsn_explorer.core.model.backend import forward_logits

    tok = handle.tokenizer
    encoded = tok([line for _, line in batch])["input_ids"]
    input_ids, mask = right_padded(encoded, tok.pad_token_id)
    logits = forward_logits(handle, _on(handle, input_ids, mask), plan).float()
    picked = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:].to(logits.device).unsqueeze(-1))
    valid = mask[:, 1:].to(logits.device).bool()
    nll = (-(picked.squeeze(-1) * valid).sum(-1)).tolist()
    tokens = valid.sum(-1).tolist()
    return [SampleResult(lang, "", sample, str(sample), {"nll": float(n), "tokens": float(t)})
            for (sample, _), n, t in zip(batch, nll, tokens)]


def _on(handle: ModelHandle, input_ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"input_ids": input_ids.to(handle.device), "attention_mask": mask.to(handle.device)}
