"""The workbench: one researcher's working state and the engine calls an interactive front end makes.

State = a session, the loaded model, the languages under study, the intervention switch rows and
the last prompt / task choices. It is saved into the session (record kind "workbench", the newest
wins) on every change, so reopening the session restores it. Every action here calls the same
`core` functions as the CLI and records its result in the session the same way.

This module never imports Textual, and imports torch only inside calls that need the model, so a
front end can import it and paint before torch loads. Calls that run the model take `progress`
and `cancel` (a plain `threading.Event`) and are meant to run off the UI thread. The saved state
is `state.py`; what front ends show is `views.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR, available_languages, corpus_file
from lsn_explorer.core.data.languages import get_language, language_table
from lsn_explorer.core.interventions.spec import Intervention, parse_intervention
from lsn_explorer.core.progress import Rate, Step
from lsn_explorer.errors import LsnError
from lsn_explorer.session.store import Session
from lsn_explorer.workbench.evals import EvalListRow, EvalRequest, EvalView, eval_view, list_row
from lsn_explorer.workbench.finetunes import AdapterRow, FinetuneRequest, adapter_row
from lsn_explorer.workbench.jobs import Estimator, JobRow, job_row
from lsn_explorer.workbench.state import STATE_KIND, SwitchRow, WorkbenchState, check_set_not_in_use
from lsn_explorer.workbench.views import (
    HISTORY_KINDS,
    HistoryEntry,
    LanguageRow,
    NeuronProfile,
    NeuronSetSummary,
    history_entry,
    parse_neuron,
    shown_params,
)

if TYPE_CHECKING:
    import threading

    from lsn_explorer.core.generate import Generation, TokenEvent
    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.core.tasks.scoring import SampleScore


class Workbench:
    """A session plus (once loaded) a model. Construct with `Workbench.open`."""

    def __init__(self, session: Session, *, corpus_dir: str | Path | None = None) -> None:
        self.session = session
        self.corpus_dir = Path(corpus_dir) if corpus_dir else DEMO_CORPUS_DIR
        self.handle: ModelHandle | None = None
        self.estimator = Estimator()  # time left of running jobs, from successive reads
        latest = session.latest(STATE_KIND)
        self.state = WorkbenchState.from_json(latest.payload) if latest else WorkbenchState()

    @classmethod
    def open(cls, name: str, root: str | Path | None = None, *, corpus_dir: str | Path | None = None) -> "Workbench":
        return cls(Session.open(name, root), corpus_dir=corpus_dir)

    def close(self) -> None:
        self.session.close()

    def save_state(self) -> None:
        """Record the current state (the newest "workbench" record is what reopening restores)."""
        latest = self.session.latest(STATE_KIND)
        payload = self.state.to_json()
        if latest is None or latest.payload != payload:
            self.session.add(STATE_KIND, "state", payload, {})

    # -- model ---------------------------------------------------------------------------------
    def load_model(self, source: str | None = None, *, four_bit: bool = False,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Load the model (the demo model when `source` is None) with the chosen adapter, if any;
        returns its description. An adapter that no longer loads is dropped from the state and
        the base model kept: the description then says why under "adapter_error"."""
        return self._load(source, four_bit, self.state.adapter, progress, keep_base=True)

    def use_adapter(self, name: str, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Load the current model afresh with the session's adapter `name` on it ("" = the base
        model) for Generate and Score, and remember the choice; returns the model's description.
        A fresh load, never the loaded model changed in place: peft's LoRA layers cannot be taken
        out again, and the loaded model may be shared (tests, a notebook).

        Raises:
            LsnError: no such adapter, or it does not fit the model (the loaded model stays).
        """
        from lsn_explorer.core.model.adapters import find_adapter

        if name:
            find_adapter(self.session, name)  # before the model loads
        handle = self.handle
        source = handle.source if handle is not None else None
        four_bit = handle is not None and handle.quantization is not None
        description = self._load(source, four_bit, name, progress, keep_base=False)
        self.state.adapter = name
        self.save_state()
        return description

    def _load(self, source: str | None, four_bit: bool, adapter: str, progress: Callable[[str], None] | None, *,
              keep_base: bool) -> dict[str, Any]:
        """Load `source` with `adapter` ("" = none) and make it the workbench's model. An adapter
        that fails to load raises, unless `keep_base`: then the base model is used, the adapter
        dropped from the state and the reason returned under "adapter_error"."""
        say = progress or (lambda message: None)
        say("importing torch and transformers")
        from lsn_explorer.core.model.loading import load_model

        say(f"loading {source or 'the demo model'}")
        handle = load_model(source, four_bit=four_bit)
        failed: dict[str, str] = {}
        if adapter:
            from lsn_explorer.core.model.adapters import apply_adapter

            say(f"loading adapter {adapter}")
            try:
                apply_adapter(handle, self.session, adapter)
            except LsnError as exc:
                if not keep_base or handle.adapter is not None:
                    raise
                failed = {"adapter_error": f"{exc.message}; using the base model"}
                self.state.adapter = ""
                self.save_state()
        say("wrapping with nnsight")
        from lsn_explorer.core.model.backend import nnsight_model

        nnsight_model(handle)  # build the nnsight wrapper now, not on the first generation
        self.handle = handle
        return handle.describe() | ({"adapter": handle.adapter} if handle.adapter else {}) | failed

    def adapters(self) -> list[AdapterRow]:
        """The session's adapters (newest record per name), oldest first."""
        from lsn_explorer.core.model.adapters import list_adapters

        return [adapter_row(row) for row in list_adapters(self.session)]

    def require_model(self) -> ModelHandle:
        if self.handle is None:
            raise LsnError("no model is loaded yet", "wait for the model to load, or open one (command palette)")
        return self.handle

    # -- languages -----------------------------------------------------------------------------
    def language_rows(self) -> list[LanguageRow]:
        with_corpus = set(available_languages(self.corpus_dir))
        tokens: dict[str, int] = {}
        for record in self.session.records("stats"):
            tokens[record.name] = int(record.payload.get("tokens", 0))
        return [LanguageRow(lang.code, lang.name, lang.script, lang.code in with_corpus, tokens.get(lang.code))
                for lang in language_table().values()]

    def set_languages(self, langs: Sequence[str]) -> None:
        self.state.languages = [get_language(code).code for code in langs]
        self.save_state()

    def compute_stats(self, langs: Sequence[str], *, max_tokens: int | None = None,
                      progress: Callable[[Step], None] | None = None,
                      cancel: threading.Event | None = None) -> list[dict[str, Any]]:
        """Activation statistics for `langs` from the corpus folder (default: the demo corpus)."""
        from lsn_explorer.core.stats.runs import StatsSettings, compute_stats

        if not langs:
            raise LsnError("no languages chosen", "tick at least one language in the list")
        corpora = {lang: corpus_file(lang, self.corpus_dir) for lang in langs}
        rate = Rate()

        def report(lang: str, done: int, total: int) -> None:
            if progress is not None:
                progress(rate.update(lang, done, total))

        return compute_stats(self.session, self.require_model(), corpora, StatsSettings(max_tokens=max_tokens),
                             progress=report, cancel=cancel)

    # -- neurons -------------------------------------------------------------------------------
    def identify(self, method: str, params: dict[str, Any], *, name: str | None = None,
                 reference: str | None = None, progress: Callable[[str, int, int], None] | None = None,
                 cancel: threading.Event | None = None, replace: bool = False) -> NeuronSetSummary:
        """Run an identification method over the chosen languages and store the set.

        `progress(lang, done, total)` and `cancel` reach the method (a cancelled run stores
        nothing). A set that a switched-on row uses is never replaced silently: unless `replace`,
        that raises `SetInUse`, which offers a free name.
        """
        from lsn_explorer.core.neurons.methods import check_params
        from lsn_explorer.core.neurons.runs import identify, stats_languages

        name = name or method
        params = check_params(method, params)
        self.check_replace(name, replace)
        langs = self.state.languages
        if method in ("lape", "actprob90p"):
            have = set(stats_languages(self.session))
            missing = [lang for lang in langs if lang not in have]
            if missing:
                raise LsnError(f"no activation statistics for {', '.join(missing)}",
                               "compute statistics in the Languages panel first (Ctrl+T there)")
        if method == "random" and reference is None:
            raise LsnError("the random baseline needs a reference set", "choose a stored set under 'reference'")
        _, record = identify(self.session, method, langs=langs, params=params, handle=self.handle,
                             corpus_dir=self.corpus_dir, reference=reference, name=name,
                             progress=progress, cancel=cancel)
        return self.neuron_summary(name)

    def check_replace(self, name: str, replace: bool = False) -> None:
        """Raise `SetInUse` when storing a set called `name` would change a switched-on row."""
        check_set_not_in_use(self.session, name, replace, rows=self.state.rows)

    def neuron_set_names(self) -> list[str]:
        """Stored neuron set names, newest first (a name's newest record is the set it means)."""
        return list(dict.fromkeys(r.name for r in reversed(self.session.records("neuron_set"))))

    def neuron_summary(self, name: str) -> NeuronSetSummary:
        from lsn_explorer.core.neurons.runs import load_neuron_set
        from lsn_explorer.core.neurons.specificity import jaccard_matrix, language_sets

        neuron_set = load_neuron_set(self.session, name)
        record = self.session.latest("neuron_set", name)
        langs, matrix = jaccard_matrix(language_sets(neuron_set))
        return NeuronSetSummary(name, record.id if record else 0, neuron_set.method,
                                shown_params(neuron_set.method, neuron_set.params),
                                neuron_set.n_layers, neuron_set.counts(),
                                {lang: neuron_set.per_layer(lang) for lang in neuron_set.languages}, langs, matrix)

    def neuron_profile(self, text: str) -> NeuronProfile:
        """Statistics of the neuron `LAYER.INDEX` in every language with statistics."""
        from lsn_explorer.core.neurons.runs import load_neuron_set, stats_languages
        from lsn_explorer.core.stats.runs import load_stats

        layer, neuron = parse_neuron(text)
        handle = self.require_model()
        if not (0 <= layer < handle.n_layers and 0 <= neuron < handle.d_ff):
            raise LsnError(f"neuron {layer}.{neuron} is out of range",
                           f"layers 0–{handle.n_layers - 1}, neurons 0–{handle.d_ff - 1}")
        langs = stats_languages(self.session)
        if not langs:
            raise LsnError("the session has no activation statistics", "compute statistics in the Languages panel")
        columns = ["prob", "mean", "p5", "p10", "p25", "p50", "p75", "p90", "p95"]
        rows, site = {}, "s"
        for lang in langs:
            stats = load_stats(self.session, lang)
            site = stats.site
            rows[lang] = [float(stats.values[c][layer, neuron]) for c in columns]
        member_of = []
        for name in self.neuron_set_names():
            neuron_set = load_neuron_set(self.session, name)
            member_of += [f"{name}·{lang}" for lang in neuron_set.languages
                          if (layer, neuron) in neuron_set.as_set(lang)]
        return NeuronProfile(layer, neuron, site, columns, rows, member_of)

    # -- interventions -------------------------------------------------------------------------
    def set_rows(self, rows: Sequence[SwitchRow]) -> None:
        """Replace the switch rows (each spec must parse) and save the state."""
        for row in rows:
            parse_intervention(row.spec)
        self.state.rows = list(rows)
        self.save_state()

    def check_spec(self, spec: str) -> Intervention:
        """Parse a spec and check what it names (stored set, language, statistics, neuron range)
        at once, so a bad row is refused when it is typed, not when it is switched on."""
        from lsn_explorer.core.interventions.resolve import check_sources

        intervention = parse_intervention(spec)
        shape = (self.handle.n_layers, self.handle.d_ff) if self.handle is not None else None
        check_sources([intervention], self.session, shape)
        if self.handle is not None:
            from lsn_explorer.core.interventions.resolve import resolve

            resolve([intervention], self.handle, self.session)
        return intervention

    def active(self) -> list[Intervention]:
        return [parse_intervention(row.spec) for row in self.state.rows if row.enabled]

    def plan(self) -> EditPlan | None:
        """The switched-on rows resolved for the loaded model (None when none is on)."""
        from lsn_explorer.core.interventions.resolve import resolve

        active = self.active()
        return resolve(active, self.require_model(), self.session) if active else None

    # -- generation ----------------------------------------------------------------------------
    def generate(self, prompt: str, *, max_new_tokens: int | None = None, temperature: float | None = None,
                 seed: int | None = None, on_token: Callable[[TokenEvent], None] | None = None,
                 cancel: threading.Event | None = None) -> Generation:
        """Baseline and (when a switch is on) intervened continuations in one batched run,
        recorded in the session history."""
        from lsn_explorer.core.generate import generate, record_generation

        state = self.state
        state.prompt = prompt
        if max_new_tokens is not None:
            state.max_new_tokens = max_new_tokens
        if temperature is not None:
            state.temperature = temperature
        if seed is not None:
            state.seed = seed
        self.save_state()
        handle = self.require_model()
        plan = self.plan()
        rows = [None, plan] if plan is not None else [None]
        generation = generate(handle, prompt, rows, max_new_tokens=state.max_new_tokens,
                              temperature=state.temperature, seed=state.seed, on_token=on_token, cancel=cancel)
        record_generation(self.session, handle, generation)
        return generation

    # -- scoring -------------------------------------------------------------------------------
    def choose_sample(self, task: str, lang: str, sample: int, data_dir: str = "") -> dict[str, Any]:
        """Load one task sample and remember the choice; returns what the sample shows."""
        from lsn_explorer.core.tasks.registry import describe, load_examples, pick

        example = pick(load_examples(task, lang, data_dir or None), sample, task, lang)
        self.state.task, self.state.task_lang, self.state.sample, self.state.data_dir = task, lang, sample, data_dir
        self.save_state()
        return describe(task, example)

    def score(self, *, cancel: threading.Event | None = None) -> SampleScore:
        """Score the chosen sample with and without the switched-on interventions; recorded
        (a cancelled score is not)."""
        from lsn_explorer.core.tasks.registry import load_examples, pick, score_sample
        from lsn_explorer.core.tasks.scoring import record_score

        state = self.state
        handle = self.require_model()
        example = pick(load_examples(state.task, state.task_lang, state.data_dir or None), state.sample,
                       state.task, state.task_lang)
        plan = self.plan()
        plans = [None, plan] if plan is not None else [None]
        result = score_sample(handle, state.task, state.task_lang, example, plans, sample=state.sample, cancel=cancel)
        record_score(self.session, handle, result, [iv.spec for iv in plan.interventions] if plan else [])
        return result

    # -- history -------------------------------------------------------------------------------
    def history(self) -> list[HistoryEntry]:
        """Generations and scores of the session, newest first."""
        records = [r for r in self.session.records() if r.kind in HISTORY_KINDS]
        return [history_entry(r) for r in reversed(records)]

    # -- background jobs and evaluations -------------------------------------------------------
    def job_rows(self) -> list[JobRow]:
        """Every job of the session with its real state (a dead worker's job reads "interrupted")."""
        from lsn_explorer.jobs.control import list_jobs

        return [job_row(job, self.estimator) for job in list_jobs(self.session)]

    def cancel_job(self, job_id: int) -> None:
        """Ask a running job to stop after its current batch (finished units are kept)."""
        from lsn_explorer.jobs.control import cancel

        cancel(self.session, job_id)

    def resume_job(self, job_id: int) -> int:
        """Start an interrupted, cancelled or failed job again; returns the worker's pid."""
        from lsn_explorer.jobs.control import resume

        return resume(self.session, job_id)

    def job_log(self, job_id: int, lines: int = 200) -> list[str]:
        """The last `lines` lines of the job's log."""
        from lsn_explorer.jobs.control import tail

        return tail(self.session, job_id, lines)

    def eval_defaults(self) -> EvalRequest:
        """The Evaluate form's first values: the languages under study, the switched-on rows."""
        from lsn_explorer.core.evals.grid import EVAL_TASKS

        state = self.state
        return EvalRequest(task=state.task if state.task in EVAL_TASKS else "xnli", langs=tuple(state.languages),
                           switched_on=any(row.enabled for row in state.rows), data_dir=state.data_dir,
                           adapter=state.adapter)

    def launch_eval(self, request: EvalRequest) -> tuple[str, int]:
        """Check an evaluation (rows, data, sets, statistics) and start it as a background job on
        the loaded model (the session's, else the demo, when none is loaded); returns the
        evaluation's name and the job id. Bad input raises before anything is stored or started."""
        from lsn_explorer.core.evals.grid import EvalSpec, build_rows
        from lsn_explorer.core.evals.runner import check_eval
        from lsn_explorer.jobs.evals import start_eval

        intervene = [row.spec for row in self.state.rows if row.enabled] if request.switched_on else []
        rows = build_rows(request.grids(), intervene, request.random_baseline, self.session)
        spec = EvalSpec(task=request.task, langs=list(request.langs), rows=[r.to_json() for r in rows],
                        data_dir=request.data_dir or None, limit=request.limit, adapter=request.adapter or None)
        check_eval(self.session, spec)
        handle = self.handle
        model = handle.source if handle is not None else None
        four_bit = handle is not None and handle.quantization is not None
        evaluation, job_id = start_eval(self.session, spec, request.name or None, workdir=os.getcwd(), model=model,
                                        four_bit=four_bit)
        return evaluation.name, job_id

    def finetune_defaults(self) -> FinetuneRequest:
        """The Fine-tune form's first values: the newest neuron set, its target setup, the
        languages under study (the last one not English as the training language)."""
        sets = self.neuron_set_names()
        targets = [lang for lang in self.state.languages if lang != "en"] or ["en"]
        return FinetuneRequest(train_lang=targets[-1], neuron_set=sets[0] if sets else "",
                               setup="target" if sets else "none")

    def launch_finetune(self, request: FinetuneRequest) -> tuple[str, int]:
        """Check a fine-tune (settings, neuron set and its languages, training data, model source)
        and start it as a background job on the loaded model's base (else the session's, else the
        demo); returns the adapter's name and the job id. Bad input raises before anything is
        stored or started."""
        from lsn_explorer.jobs.finetunes import start_finetune

        spec = request.spec()
        handle = self.handle
        spec, job_id = start_finetune(self.session, spec, workdir=os.getcwd(),
                                      model=handle.source if handle is not None else None)
        return spec.adapter_name(), job_id

    def evaluations(self) -> list[EvalListRow]:
        """The session's evaluations, newest first, each with its job's state."""
        from lsn_explorer.jobs.control import list_jobs

        states = {job.id: job.state for job in list_jobs(self.session)}
        return [list_row(e, states.get(e.job) if e.job is not None else None) for e in reversed(self.session.evals())]

    def _eval_state(self, name: str) -> str:
        return next((row.state for row in self.evaluations() if row.name == name), "partial")

    def eval_view(self, name: str) -> EvalView:
        """The evaluation's table so far (bootstrap CIs: run it off the UI thread for big ones)."""
        from lsn_explorer.core.evals.runner import eval_results, find_eval
        from lsn_explorer.core.evals.summary import summarize

        evaluation = find_eval(self.session, name)
        spec, rows, samples = eval_results(self.session, evaluation)
        cells = summarize(spec.task, rows, samples, seed=spec.seed)
        return eval_view(evaluation, rows, cells, len(samples), self._eval_state(evaluation.name))

    def write_heat_map(self, name: str) -> Path:
        """Write the evaluation's PNG heat map into the session's `exports/` folder; returns its path."""
        from lsn_explorer.core.evals.runner import eval_results, find_eval
        from lsn_explorer.core.evals.summary import summarize
        from lsn_explorer.core.evals.tables import heat_map

        evaluation = find_eval(self.session, name)
        spec, rows, samples = eval_results(self.session, evaluation)
        folder = self.session.folder / "exports"
        folder.mkdir(exist_ok=True)
        return heat_map(summarize(spec.task, rows, samples, seed=spec.seed), rows, folder / f"{name}-heatmap.png",
                        title=f"{name}: {spec.task}")
