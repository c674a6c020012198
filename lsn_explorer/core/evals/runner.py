"""Running an evaluation: every (language × row) cell, batch by batch, each batch stored at once.

The unit of work is one batch of one cell. Batches are fixed slices of the language's samples
in `batch_order` (by length, so little padding), the same in every run, and a batch's results are
written in one transaction. A run that is cancelled, killed (kill -9) or crashes therefore leaves whole batches;
running the same evaluation again (`jobs resume`, or `eval run` with the same name) skips every
batch already stored and scores the rest exactly as an uninterrupted run would have — same
slices, same padding, same numbers.

`check_eval` is the fast part (data files, neuron sets, statistics, adapter), run before any model
loads; `stored_eval` names and stores a new evaluation (or finds the one to continue); `run_eval`
does the work; `eval_results` reads the stored samples back.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

from lsn_explorer.core.evals.grid import EvalSpec, cell_specs, random_reference
from lsn_explorer.core.evals.results import RowInfo, SampleResult
from lsn_explorer.core.progress import Cancel, Progress, stop_if_cancelled
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.distributed import Ranks
    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.core.neurons.neuron_set import NeuronSet
    from lsn_explorer.session.evals import EvalRow
    from lsn_explorer.session.store import Session


def check_eval(session: Session, spec: EvalSpec) -> dict[str, list[tuple[int, Any]]]:
    """Everything an evaluation needs that can be checked without a model; returns each
    language's samples (loaded once here, handed to `run_eval`).

    Raises:
        TaskFileError / LanguageError: a language without data for the task, an empty or bad file.
        InterventionError / StatsMissing: a set, language or statistics a row needs is missing.
        LsnError: the adapter does not exist.
    """
    from lsn_explorer.core.evals.scorers import load_samples
    from lsn_explorer.core.interventions.resolve import check_sources
    from lsn_explorer.core.interventions.spec import parse_intervention
    from lsn_explorer.core.model.adapters import find_adapter

    samples = {lang: load_samples(spec.task, lang, spec.data_dir, spec.split, spec.limit) for lang in spec.langs}
    rows = spec.row_infos()
    for lang in spec.langs:
        for row in rows:
            specs = cell_specs(row, lang)
            if row.kind == "random":  # its neurons are drawn at run time; its reference set must exist
                specs = [random_reference(row, rows) + ":" + s.split(":", 1)[1] for s in specs]
            try:
                check_sources([parse_intervention(s) for s in specs], session)
            except LsnError as exc:  # name the row as the user wrote it, not its pinned set id
                raise type(exc)(f"{lang} · {row.key}: {exc.message}",
                                exc.hint + ("; or leave that language out of --langs" if row.kind != "intervene" else "")
                                ) from None
    if spec.adapter is not None:
        find_adapter(session, spec.adapter)
    return samples


def stored_eval(session: Session, spec: EvalSpec, name: str | None = None) -> EvalRow:
    """The evaluation to run for `spec`: a new one (named `TASK-N` when `name` is None), or the
    unfinished one called `name` with the same spec (running it again continues it).

    Raises:
        LsnError: an evaluation called `name` has other settings, or has already finished.
    """
    if name is not None:
        existing = session.eval_named(name)
        if existing is not None:
            if existing.spec != spec.to_json():
                raise LsnError(f"session {session.name!r} already has an evaluation {name!r} with other settings",
                               "pass another --name (or the same command it was started with, to continue it)")
            if existing.finished:
                raise LsnError(f"evaluation {name!r} has already finished",
                               f"see it with `lsn-explorer eval show --session {session.name} --name {name}`")
            return existing
    else:
        taken = {e.name for e in session.evals()}
        name = next(f"{spec.task}-{i}" for i in range(1, len(taken) + 2) if f"{spec.task}-{i}" not in taken)
    return session.add_eval(name, spec.to_json(), {})


def spec_of(evaluation: EvalRow) -> EvalSpec:
    """The validated spec of a stored evaluation."""
    return EvalSpec.from_json(evaluation.spec, source=f"evaluation {evaluation.name!r}")


def prepare_model(session: Session, evaluation: EvalRow, model: str | None = None, *, dtype: str = "auto",
                  four_bit: bool = False, device: str = "auto", record: bool = True,
                  device_map: str | None = None, max_memory: dict[int | str, str] | None = None) -> ModelHandle:
    """The model an evaluation runs on (`model`, else the session's, else the demo), with its
    adapter loaded; the model's provenance is stored with the evaluation (unless `record` is
    False: the ranks of a torchrun run other than rank 0 write nothing)."""
    from lsn_explorer.core.model.session_model import load_session_model

    handle = load_session_model(session, model, dtype=dtype, four_bit=four_bit, device=device,
                                adapter=spec_of(evaluation).adapter, device_map=device_map, max_memory=max_memory)
    if record:
        session.set_eval(evaluation.id, provenance={"model": handle.provenance()})
    return handle


def run_eval(session: Session, handle: ModelHandle, evaluation: EvalRow, *, progress: Progress | None = None,
             cancel: Cancel | None = None, samples: dict[str, list[tuple[int, Any]]] | None = None,
             on_batch: Callable[[str, str, int], None] | None = None, ranks: Ranks | None = None) -> str:
    """Score every cell of a stored evaluation that is not stored yet; returns a one-line summary.

    Args:
        session: where the evaluation and its samples live.
        handle: the loaded model (with the evaluation's adapter already applied, see `prepare_model`).
        evaluation: the stored evaluation (`Session.add_eval` / `eval_named`).
        progress: `progress(label, samples done, samples total)` after every batch.
        cancel: checked between batches; a set event raises `Cancelled` with every finished batch stored.
        samples: each language's samples from `check_eval` (loaded again when None).
        on_batch: called with (lang, row key, first sample) after each stored batch (tests use it).
        ranks: a torchrun run: the missing batches are dealt out in rounds, one per rank; each
            round's results go to rank 0, which stores them (the same batches, so the same numbers
            as one process). Other ranks store nothing.
    """
    spec = spec_of(evaluation)
    samples = samples if samples is not None else check_eval(session, spec)
    rows = spec.row_infos()
    done = session.stored_samples(evaluation.id)
    total = sum(len(samples[lang]) for lang in spec.langs) * len(rows)
    finished = sum(len(v) for v in done.values())
    units = []  # (lang, row, batch): fixed slices of the length order, the same in every run
    for lang in spec.langs:
        pairs = batch_order(spec.task, samples[lang])
        for row in rows:
            for start in range(0, len(pairs), spec.batch_size):
                units.append((lang, row, pairs[start:start + spec.batch_size]))
    todo = [u for u in units if not all(sample in done.get((u[0], u[1].key), set()) for sample, _ in u[2])]
    skipped = sum(len(batch) for _, _, batch in units) - sum(len(batch) for _, _, batch in todo)
    scorer = _CellScorer(session, handle, spec, rows)
    world = ranks.world if ranks is not None else 1
    for first in range(0, len(todo), world):
        stop_if_cancelled(cancel, f"the evaluation {evaluation.name!r}")
        round_ = todo[first:first + world]
        mine = round_[ranks.rank] if ranks is not None and ranks.rank < len(round_) else None
        results = [scorer.score(*round_[0])] if ranks is None else \
            _exchange(ranks, scorer.score(*mine) if mine is not None else [])
        if results is None:  # not rank 0: its share is delivered
            continue
        for (lang, row, batch), result in zip(round_, results):
            session.put_samples(evaluation.id, result)
            finished += len(batch)
            if progress is not None:
                progress(f"{lang} · {row.key}", finished, total)
            if on_batch is not None:
                on_batch(lang, row.key, batch[0][0])
    scored = sum(len(batch) for _, _, batch in todo)
    if ranks is not None and not ranks.main:
        return ""
    from lsn_explorer.session.store import now

    session.set_eval(evaluation.id, finished=now())
    return (f"{evaluation.name}: {spec.task} × {len(spec.langs)} languages × {len(rows)} rows, "
            f"{scored:,} samples scored" + (f", {skipped:,} already stored" if skipped else ""))


class _CellScorer:
    """Scores one batch of one cell; each cell's edit plan is resolved once."""

    def __init__(self, session: Session, handle: ModelHandle, spec: EvalSpec, rows: list[RowInfo]) -> None:
        self.session, self.handle, self.spec, self.rows = session, handle, spec, rows
        self.plans: dict[tuple[str, str], EditPlan | None] = {}
        self.random_sets: dict[str, NeuronSet] = {}

    def score(self, lang: str, row: RowInfo, batch: list[tuple[int, Any]]) -> list[dict[str, Any]]:
        from lsn_explorer.core.evals.scorers import score_batch

        if (lang, row.key) not in self.plans:
            self.plans[(lang, row.key)] = None if row.kind == "none" else _plan(
                self.session, self.handle, self.spec, row, self.rows, lang, self.random_sets)
        results = score_batch(self.handle, self.spec.task, lang, batch, self.plans[(lang, row.key)],
                              self.spec.protocol)
        return [dataclasses.asdict(dataclasses.replace(r, row=row.key)) for r in results]


def _exchange(ranks: Ranks, results: list[dict[str, Any]]) -> list[list[dict[str, Any]]] | None:
    """Every rank's results of this round on rank 0, in rank order (JSON on the wire)."""
    import json

    from lsn_explorer.core.distributed import gather_bytes

    gathered = gather_bytes(ranks, json.dumps(results).encode())
    return None if gathered is None else [json.loads(chunk) for chunk in gathered]


def batch_order(task: str, pairs: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """Samples ordered by text length (then index), so a batch holds samples of similar length and
    carries little padding. The order depends on the samples only, so every run, resumed or not,
    cuts the same batches."""
    def length(pair: tuple[int, Any]) -> tuple[int, int]:
        index, example = pair
        if task == "xnli":
            return len(example.premise) + len(example.hypothesis), index
        if task == "xquad":
            return len(example.context) + len(example.question), index
        if task == "mkqa":
            return len(example.query), index
        return len(example), index

    return sorted(pairs, key=length)


def _plan(session: Session, handle: ModelHandle, spec: EvalSpec, row: RowInfo, rows: list[RowInfo], lang: str,
          random_sets: dict[str, NeuronSet]) -> EditPlan:
    """The edit plan of one cell; a random row's set is drawn again from its seed (reproducible)."""
    from lsn_explorer.core.interventions.resolve import resolve
    from lsn_explorer.core.interventions.spec import parse_intervention

    sets: dict[str, NeuronSet] = {}
    if row.kind == "random":
        # `random1` of a grid over set A and of one over set B are different draws: cache by both.
        name, reference_set = row.specs[0].split(":", 1)[0], random_reference(row, rows)
        drawn = f"{name}{reference_set}"
        if drawn not in random_sets:
            from lsn_explorer.core.interventions.resolve import stored_set
            from lsn_explorer.core.neurons.baseline import random_baseline

            reference = stored_set(reference_set, handle, session)
            random_sets[drawn] = random_baseline(reference, seed=1000 * spec.seed + (row.seed or 0))
        sets[name] = random_sets[drawn]
    return resolve([parse_intervention(s) for s in cell_specs(row, lang)], handle, session, sets=sets)


def eval_results(session: Session, evaluation: EvalRow) -> tuple[EvalSpec, list[RowInfo], list[SampleResult]]:
    """An evaluation's spec, rows and stored per-sample results."""
    spec = spec_of(evaluation)
    return spec, spec.row_infos(), [SampleResult(**data) for data in session.samples(evaluation.id)]


def find_eval(session: Session, name: str | None) -> EvalRow:
    """The evaluation called `name`, or the newest one.

    Raises:
        LsnError: none of that name, or no evaluations at all.
    """
    evals = session.evals()
    if not evals:
        raise LsnError(f"session {session.name!r} has no evaluations",
                       f"run one with `lsn-explorer eval run --session {session.name} --task xnli --langs en ...`")
    if name is None:
        return evals[-1]
    found = next((e for e in evals if e.name == name), None)
    if found is None:
        raise LsnError(f"session {session.name!r} has no evaluation {name!r}",
                       f"its evaluations: {', '.join(e.name for e in evals)}")
    return found
