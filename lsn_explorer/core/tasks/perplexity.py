"""Perplexity of text under a model, with or without an intervention, and PPXC (SCIENCE.md §5).

Each line is scored on its own, starting from the tokenizer's BOS, and every token of the line
is predicted (labels are shifted once, here, and nowhere else). Batches are right-padded so that
position ids are the plain 0..n-1 of an unpadded run. With and without an intervention the same
lines are tokenized the same way, so both perplexities cover identical tokens.

Held-out lines come from the demo corpus, a corpus folder, or FLORES+ on the hub (`load_lines`).

PPXC(i, j) = PPL of language j with language i's neurons set to zero − PPL of j without. Base
perplexities differ by 10× between languages, so rows are compared by relative change.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from lsn_explorer.core.progress import Cancel, Progress, stop_if_cancelled
from lsn_explorer.core.tasks.files import hub_dataset
from lsn_explorer.core.tasks.flores import hub_lines
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.interventions.spec import Intervention
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session


@dataclass(frozen=True)
class Perplexity:
    """Summed negative log-likelihood (nats) over `n_tokens` predicted tokens."""

    nll: float
    n_tokens: int

    @property
    def value(self) -> float:
        return math.exp(self.nll / self.n_tokens) if self.n_tokens else float("nan")


def line_perplexity(handle: ModelHandle, lines: Sequence[str], batch_size: int = 32,
                    plan: EditPlan | None = None) -> Perplexity:
    """Perplexity over `lines`, each scored independently from BOS (token-weighted), with `plan`'s
    interventions applied when given."""
    return grouped_perplexity(handle, {"": lines}, batch_size, plan)[""]


def grouped_perplexity(handle: ModelHandle, groups: Mapping[str, Sequence[str]], batch_size: int = 32,
                       plan: EditPlan | None = None) -> dict[str, Perplexity]:
    """Perplexity of each group of lines (e.g. one group per language) from one sweep.

    Lines of all groups are batched together in order of length, so batches carry little padding
    (about half the time of batching them as they come, on the demo corpus); each line's
    log-likelihood is added to its own group, so the result equals scoring the groups one by one
    up to the order of float summation.
    """
    import torch

    from lsn_explorer.core.model.backend import forward_logits
    from lsn_explorer.core.model.padding import right_padded

    tok = handle.tokenizer
    items: list[tuple[str, list[int]]] = []
    for name, lines in groups.items():
        items += [(name, ids) for ids in tok(list(lines))["input_ids"] if len(ids) > 1] if lines else []
    items.sort(key=lambda item: len(item[1]))  # stable: equal lengths keep their order
    nll = {name: 0.0 for name in groups}
    counts = {name: 0 for name in groups}
    pad = tok.pad_token_id
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        input_ids, mask = right_padded([ids for _, ids in chunk], pad)
        input_ids, mask = input_ids.to(handle.device), mask.to(handle.device)
        logits = forward_logits(handle, {"input_ids": input_ids, "attention_mask": mask}, plan).float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        picked = logprobs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        valid = mask[:, 1:].bool()
        per_row = (picked * valid).sum(-1).tolist()
        tokens = valid.sum(-1).tolist()
        for (name, _), row_nll, row_tokens in zip(chunk, per_row, tokens):
            nll[name] -= row_nll
            counts[name] += int(row_tokens)
    return {name: Perplexity(nll[name], counts[name]) for name in groups}


def continuation_perplexity(handle: ModelHandle, prompt_ids: Sequence[int], new_ids: Sequence[int],
                            plan: EditPlan | None = None) -> Perplexity:
    """Perplexity of `new_ids` following `prompt_ids` (only the new tokens are scored)."""
    import torch

    from lsn_explorer.core.model.backend import forward_logits

    if not new_ids:
        return Perplexity(0.0, 0)
    ids = torch.tensor([list(prompt_ids) + list(new_ids)], device=handle.device)
    logits = forward_logits(handle, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, plan).float()
    start = len(prompt_ids)
    logprobs = torch.log_softmax(logits[0, start - 1:-1], dim=-1)
    picked = logprobs.gather(-1, ids[0, start:].unsqueeze(-1))
    return Perplexity(-picked.sum().item(), len(new_ids))


def heldout_lines(lang: str, corpus_dir: str | None = None) -> list[str]:
    """The held-out lines of a language's corpus (the demo corpus by default)."""
    from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR, corpus_file, read_lines, select

    return select(read_lines(corpus_file(lang, corpus_dir or DEMO_CORPUS_DIR)), "heldout")


def load_lines(lang: str, data_dir: str | Path | None = None, split: str = "devtest") -> list[str]:
    """Held-out lines of one language for perplexity, from any of the three sources.

    Args:
        lang: our language code.
        data_dir: None for the demo corpus; a folder of `<lang>.txt` or FLORES-200 files
            (`hin_Deva.devtest`), of which the held-out lines are taken exactly as `heldout_lines`
            takes them (every tenth line), so results match `ppl --corpus DIR`; or `hf:DATASET`
            (e.g. `hf:openlanguagedata/flores_plus`) for every sentence of a FLORES+ split, which
            is evaluation-only text (read with `datasets`, which caches the download).
        split: the FLORES+ split with `hf:` (dev | devtest); folders have no splits.

    Raises:
        CorpusError: no text for the language in the folder, or an empty or non-UTF-8 file.
        TaskFileError: a hub source that cannot be read (see `flores.hub_lines`).
        LanguageError: an unknown language, or one without a FLORES code (with `hf:`).
    """
    dataset = hub_dataset(data_dir)
    if dataset is not None:
        return hub_lines(lang, split, dataset)
    return heldout_lines(lang, None if data_dir is None else os.fspath(data_dir))


@dataclass(frozen=True)
class PplChange:
    lang: str
    base: Perplexity
    intervened: Perplexity

    @property
    def delta(self) -> float:
        return self.intervened.value - self.base.value

    @property
    def relative(self) -> float:
        return self.delta / self.base.value


def ppl_change(handle: ModelHandle, lines: Sequence[str], plan: EditPlan, lang: str = "") -> PplChange:
    """Perplexity of the same lines without and with `plan`."""
    return PplChange(lang, line_perplexity(handle, lines), line_perplexity(handle, lines, plan=plan))


@dataclass
class PpxcMatrix:
    """PPXC over languages: rows = whose neurons are deactivated (i), columns = evaluated (j)."""

    rows: list[str]
    cols: list[str]
    base: dict[str, float]
    ppl: dict[str, dict[str, float]]  # i → j → PPL of j with i's neurons intervened
    skipped: dict[str, str]  # i → why the row is missing (e.g. the set has no neurons for i)

    def delta(self, i: str, j: str) -> float:
        return self.ppl[i][j] - self.base[j]

    def relative(self, i: str, j: str) -> float:
        return self.delta(i, j) / self.base[j]

    def diagonal_dominant(self, i: str) -> bool:
        """Whether PPXC(i, i) is the largest relative change of row i."""
        return max(self.cols, key=lambda j: self.relative(i, j)) == i


def ppxc(handle: ModelHandle, session: Session | None, langs: Sequence[str], template: Intervention,
         corpus_dir: str | None = None, progress: Progress | None = None,
         cancel: Cancel | None = None) -> PpxcMatrix:
    """PPXC(i, j) for every pair of `langs`: `template` (e.g. lape=zero) with its language set to i,
    perplexity measured on j's held-out lines. A row whose set has no neurons for i is skipped."""
    from dataclasses import replace

    from lsn_explorer.core.interventions.resolve import resolve
    from lsn_explorer.core.interventions.spec import InterventionError

    lines = {j: heldout_lines(j, corpus_dir) for j in langs}
    base = {j: p.value for j, p in grouped_perplexity(handle, lines).items()}
    out: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    total, done = len(langs) * len(langs), 0
    for i in langs:
        stop_if_cancelled(cancel, "the PPXC matrix")
        try:
            plan = resolve([replace(template, lang=i)], handle, session)
        except InterventionError as exc:
            skipped[i] = exc.message
            done += len(langs)
            continue
        out[i] = {j: p.value for j, p in grouped_perplexity(handle, lines, plan=plan).items()}
        done += len(langs)
        if progress is not None:
            progress(f"row {i}", done, total)
    if not out:
        raise LsnError("no language has neurons to deactivate", "; ".join(skipped.values()))
    return PpxcMatrix([i for i in langs if i in out], list(langs), base, out, skipped)


def ppl_rows(handle: ModelHandle, lines: dict[str, Sequence[str]], plan: EditPlan | None = None
             ) -> list[dict[str, float | int | str]]:
    """One row per language: held-out perplexity, and with `plan` applied when given.

    Each row holds `lang`, `tokens`, `ppl`, `intervened`, `change` (intervened − ppl) and
    `relative` (change / ppl); without a plan `intervened` equals `ppl` and the changes are 0.
    """
    rows: list[dict[str, float | int | str]] = []
    for lang, text in lines.items():
        if plan is None:
            base = line_perplexity(handle, text)
            rows.append({"lang": lang, "tokens": base.n_tokens, "ppl": base.value, "intervened": base.value,
                         "change": 0.0, "relative": 0.0})
            continue
        change = ppl_change(handle, text, plan, lang)
        rows.append({"lang": lang, "tokens": change.base.n_tokens, "ppl": change.base.value,
                     "intervened": change.intervened.value, "change": change.delta, "relative": change.relative})
    return rows


def record_ppl(session: Session, handle: ModelHandle, rows: list[dict[str, float | int | str]],
               interventions: list[str]) -> int:
    """Store a perplexity table (`ppl_rows`) in the session, named by its languages; returns the
    record id.

    Args:
        interventions: the intervention specs the rows were measured with, as written.
    """
    from lsn_explorer.session.provenance import provenance

    langs = ",".join(str(row["lang"]) for row in rows)
    record = session.add("ppl", langs, {"rows": rows, "interventions": interventions},
                         provenance(model=handle.provenance(), method="ppl",
                                    params={"interventions": interventions}))
    return record.id


def ppxc_payload(matrix: PpxcMatrix, set_name: str, value: str) -> dict[str, object]:
    """The plain-data form of a PPXC matrix, as stored and as `ppl --matrix --json` prints it."""
    return {"set": set_name, "value": value, "rows": matrix.rows, "cols": matrix.cols,
            "base": matrix.base, "ppl": matrix.ppl, "skipped": matrix.skipped}


def record_ppxc(session: Session, handle: ModelHandle, matrix: PpxcMatrix, set_name: str, value: str) -> int:
    """Store a PPXC matrix in the session under the neuron set's name; returns the record id.

    Args:
        set_name: the stored neuron set whose languages' neurons were intervened on.
        value: the value written to them (e.g. "zero").
    """
    from lsn_explorer.session.provenance import provenance

    record = session.add("ppxc", set_name, ppxc_payload(matrix, set_name, value),
                         provenance(model=handle.provenance(), method="ppxc",
                                    params={"set": set_name, "value": value}))
    return record.id
