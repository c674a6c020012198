"""Latent-space analyses for front ends (the app's Analysis tab): the request its fields make,
the states computed once for it (`core.latent.analyses.gather`, cached in the session), and each
analysis's result, chart and table from those states. No Textual; torch only inside calls.

Conditions are the CLI's `--intervene` / `--random-baseline` made from the switch rows: "none";
"rows": the switched-on rows together, as one condition (as Generate and Score apply them);
"random": that and random neurons matched to it. With `each_language`, a row naming one
language's neurons of a stored set (`type1:ja=zero@last`) acts on every analysed language with
that language's own neurons (`type1:{lang}=zero@last`, Tezuka & Inoue's protocol); without it, a
row acts only on the text of the language it names.

Every number shown comes from `analyse`'s result dict: `chart` and `table` only pick values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence, cast

from lsn_explorer.core.data.languages import parse_languages
from lsn_explorer.errors import LsnError
from lsn_explorer.workbench.state import SwitchRow

if TYPE_CHECKING:
    from lsn_explorer.core.latent.analyses import LatentStates, Texts
    from lsn_explorer.core.latent.conditions import Condition
    from lsn_explorer.core.progress import Cancel, Progress
    from lsn_explorer.workbench.bench import Workbench

ANALYSES: tuple[str, ...] = ("centroids", "pca", "cevr", "mknn", "parallel")  # = core's (torch-free here)
TITLES = {"centroids": "centroid similarity", "pca": "PCA (2-D)", "cevr": "dimensionality (CEVR)",
          "mknn": "mutual k-NN", "parallel": "parallel vs non-parallel"}
ConditionChoice = Literal["none", "rows", "random"]
CONDITION_CHOICES: tuple[tuple[str, str], ...] = (
    ("none", "none"), ("rows", "none + switched-on rows"), ("random", "none + rows + random baseline"))
DEFAULT_LINES = 200
DEFAULT_K = 10
LINE_STYLES = {"none": "solid", "iv": "dashed", "random": "dotted"}  # as core.latent.figures draws them
LAYERED = ("centroids", "pca")  # analyses whose result depends on the layer


@dataclass(frozen=True)
class AnalysisRequest:
    """What the states are computed for: languages (English first), lines, conditions."""

    langs: tuple[str, ...] = ("en", "zh")
    lines: int = DEFAULT_LINES
    conditions: ConditionChoice = "none"
    each_language: bool = True

    @classmethod
    def from_fields(cls, *, langs: str, lines: str, conditions: str, each_language: bool) -> AnalysisRequest:
        """The request from the tab's text fields.

        Raises:
            LsnError / LanguageError: lines that are not a number, an unknown language.
        """
        if conditions not in {key for key, _ in CONDITION_CHOICES}:
            raise LsnError(f"unknown conditions {conditions!r}", "choose none, rows or random")
        codes = [lang.code for lang in parse_languages(langs)]
        count = whole_number(lines, "lines")
        if count < 2:
            raise LsnError(f"lines {count} are too few to compare anything", "type at least 2 in the lines field, e.g. 200")
        return cls(tuple(dict.fromkeys(["en", *codes])), count, cast(ConditionChoice, conditions), each_language)

    def intervene(self, rows: Sequence[SwitchRow]) -> list[str]:
        """The condition texts (`--intervene`) the switched-on `rows` make (module doc)."""
        if self.conditions == "none":
            return []
        specs = [spec_for_each_language(row.spec) if self.each_language else row.spec
                 for row in rows if row.enabled]
        if not specs:
            raise LsnError("no intervention row is switched on",
                           "switch one on in the Interventions tab (F4), or choose conditions 'none'")
        return [" + ".join(dict.fromkeys(specs))]


def spec_for_each_language(spec: str) -> str:
    """`type1:ja=zero@last` → `type1:{lang}=zero@last`; a typed neuron list or a spec without a
    language stays as it is."""
    from lsn_explorer.core.interventions.spec import parse_intervention

    intervention = parse_intervention(spec)
    if intervention.source == "list" or intervention.lang is None:
        return intervention.spec
    return replace(intervention, lang="en").spec.replace(":en=", ":{lang}=", 1)


def whole_number(text: str, what: str) -> int:
    text = text.strip().replace(",", "")
    if not text.isdigit():
        raise LsnError(f"{what} must be a whole number (got {text!r})", f"type a number in the {what} field")
    return int(text)


@dataclass(frozen=True)
class Series:
    """One curve (or one language's points) of a chart: `group` picks its colour (a language),
    `style` its line (a condition: solid none, dashed intervened, dotted random; "points": scatter)."""

    name: str
    xs: list[float]
    ys: list[float]
    group: int
    style: str = "solid"


@dataclass(frozen=True)
class Chart:
    """One panel of the plot: lines over depth, or a scatter (PCA)."""

    title: str
    kind: Literal["lines", "scatter"]
    series: list[Series]
    x_label: str = "depth"
    marker: int | None = None  # the depth the table and the layer field show
    band: tuple[int, int] | None = None  # the middle depths (parallel), marked on the x axis


@dataclass(frozen=True)
class Figure:
    charts: list[Chart]
    groups: list[str]  # colour index → language
    styles: list[tuple[str, str]]  # (style, condition label) for the legend


@dataclass(frozen=True)
class TableView:
    """The numbers beside the plot: `rows` of cells (labels as text, values as numbers)."""

    title: str
    columns: list[str]
    rows: list[list[str | float]] = field(default_factory=list)
    digits: int = 4


class LatentView:
    """The Analysis tab's state: the request the states were computed for, the states, and the
    results computed from them (kept, so switching back to a plot or a layer is instant)."""

    def __init__(self, workbench: Workbench) -> None:
        self.workbench = workbench
        self.request: AnalysisRequest | None = None  # what `states` were computed for
        self.states: LatentStates | None = None
        self._pending: tuple[AnalysisRequest, Texts, list[Condition]] | None = None
        self._results: dict[tuple[str, int | None, int | None], dict[str, Any]] = {}

    def defaults(self) -> AnalysisRequest:
        """The tab's first values: the languages under study; the switched-on rows if any is on."""
        rows_on = any(row.enabled for row in self.workbench.state.rows)
        return AnalysisRequest(tuple(dict.fromkeys(["en", *self.workbench.state.languages])),
                               conditions="rows" if rows_on else "none")

    def switched_on(self) -> list[str]:
        return [row.spec for row in self.workbench.state.rows if row.enabled]

    @property
    def depths(self) -> int | None:
        return self.states.depths if self.states is not None else None

    def prepare(self, request: AnalysisRequest) -> list[str]:
        """Check `request` before any model work: the model is loaded, every language has parallel
        text, the rows name stored sets. Returns the condition labels.

        Raises:
            LsnError: the model is not loaded, or bad input (nothing is computed or stored).
        """
        self.workbench.require_model()
        from lsn_explorer.core.latent.analyses import load_texts
        from lsn_explorer.core.latent.conditions import build_conditions

        texts = load_texts(request.langs, self.workbench.corpus_dir, request.lines)
        conditions = build_conditions(request.intervene(self.workbench.state.rows), request.conditions == "random",
                                      self.workbench.session)
        self._pending = (request, texts, conditions)
        return [condition.label for condition in conditions]

    def compute(self, progress: Progress | None = None, cancel: Cancel | None = None) -> LatentStates:
        """The states of the prepared request (run off the UI thread: the first time runs the model;
        afterwards they come from the session). `progress(label, done, total)` counts sentences."""
        if self._pending is None:
            raise LsnError("nothing to compute", "press Compute")
        from lsn_explorer.core.latent.analyses import gather

        request, texts, conditions = self._pending
        states = gather(self.workbench.require_model(), self.workbench.session, texts, conditions,
                        progress=progress, cancel=cancel)
        self.request, self.states, self._results = request, states, {}
        return states

    def result(self, analysis: str, layer: int | None = None, k: int = DEFAULT_K) -> dict[str, Any]:
        """`analyse` on the computed states (the model never runs here); kept per
        (analysis, layer, k), counting only what the analysis depends on.

        Raises:
            LsnError: no states yet, a layer beyond the model's depths, k too large for the lines.
        """
        if self.states is None:
            raise LsnError("no states computed yet", "press Compute first")
        from lsn_explorer.core.latent.analyses import analyse, check_layer

        layer = check_layer(layer, self.states.depths) if analysis in LAYERED else None
        key = (analysis, layer, k if analysis == "mknn" else None)
        if key not in self._results:
            self._results[key] = analyse(self.states, analysis, layer=layer, k=k)
        return self._results[key]

    def export_png(self, result: dict[str, Any], path: str | Path | None = None) -> Path:
        """Draw `result` to `path` (default: the session's `exports/` folder); returns the path."""
        from lsn_explorer.core.latent.figures import save_png
        from lsn_explorer.paths import output_file

        if path is None:
            folder = self.workbench.session.folder / "exports"
            depth = f"-depth{result['layer']}" if "layer" in result else ""
            k = f"-k{result['k']}" if "k" in result else ""
            path = folder / f"analysis-{result['analysis']}-{'-'.join(result['languages'])}{depth}{k}.png"
        return save_png(result, output_file(path, "PNG file"))


def condition_style(key: str) -> str:
    return LINE_STYLES["random" if key.startswith("random") else "iv" if key.startswith("iv") else "none"]


def figure(result: dict[str, Any], depth: int) -> Figure:
    """The charts of `result`: lines over depth (colour = language, style = condition), or the PCA
    scatter per condition; `depth` is marked on the depth axis."""
    analysis, results = result["analysis"], result["results"]
    langs = result["languages"]
    groups = {lang: i for i, lang in enumerate(langs)}
    labels = {c["key"]: c["label"] for c in result["conditions"]}
    styles = [(condition_style(key), labels[key]) for key in results]

    def lines(title: str, curves: dict[str, dict[str, list[float]]], band: tuple[int, int] | None = None) -> Chart:
        series = [Series(lang if key == "none" else f"{lang}·{key}", [float(d) for d in range(len(curve))],
                         [float(v) for v in curve], groups[lang], condition_style(key))
                  for key, per_lang in curves.items() for lang, curve in per_lang.items()]
        return Chart(title, "lines", series, marker=depth, band=band)

    if analysis == "pca":
        charts = []
        for key, data in results.items():
            first, second = data["explained"]
            series = [Series(lang, [c[0] for c in coords], [c[1] for c in coords], groups[lang], "points")
                      for lang, coords in data["coords"].items()]
            charts.append(Chart(f"depth {result['layer']} · {labels[key]} · PC1 {100 * first:.1f} % · "
                                f"PC2 {100 * second:.1f} %", "scatter", series, x_label="PC1"))
        return Figure(charts, langs, [])
    if analysis == "centroids":
        charts = [lines("cos(en centroid, L centroid)", {key: data["en"] for key, data in results.items()})]
    elif analysis == "cevr":
        thresholds = list(next(iter(next(iter(results.values())).values())))
        charts = [lines(f"components for {100 * float(t):g} % of the variance",
                        {key: {lang: counts[t] for lang, counts in data.items()} for key, data in results.items()})
                  for t in thresholds]
    elif analysis == "mknn":
        charts = [lines(f"mutual {result['k']}-NN alignment with en", results)]
    else:
        middle = result["summary"]["middle_depths"]
        band = (middle[0], middle[-1])
        charts = [lines(title, {key: {lang: v[measure] for lang, v in data.items()} for key, data in results.items()},
                        band if measure == "gap" else None)
                  for measure, title in (("gap", "gap (parallel − non-parallel)"), ("parallel", "parallel cosine"),
                                         ("nonparallel", "non-parallel cosine"))]
    return Figure(charts, langs, styles)


def table(result: dict[str, Any], depth: int) -> TableView:
    """The numbers of `result` at `depth` (and, for parallel, the middle-depth summary)."""
    analysis, results = result["analysis"], result["results"]
    if analysis == "centroids":
        langs = result["languages"]
        return TableView(f"centroid cosine at depth {result['layer']} (none)", ["", *langs],
                         [[lang, *row] for lang, row in zip(langs, results["none"]["matrix"])], digits=3)
    if analysis == "pca":
        rows: list[list[str | float]] = []
        for key, data in results.items():
            rows += [[key, lang, _mean([c[0] for c in coords]), _mean([c[1] for c in coords])]
                     for lang, coords in data["coords"].items()]
        return TableView(f"mean position at depth {result['layer']}", ["cond", "lang", "PC1", "PC2"], rows, digits=3)
    if analysis == "cevr":
        thresholds = list(next(iter(next(iter(results.values())).values())))
        return TableView(f"components at depth {depth}", ["cond", "lang", *(f"{100 * float(t):g}%" for t in thresholds)],
                         [[key, lang, *(float(counts[t][depth]) for t in thresholds)]
                          for key, data in results.items() for lang, counts in data.items()], digits=0)
    if analysis == "mknn":
        return TableView(f"mutual {result['k']}-NN at depth {depth}", ["cond", "lang", "alignment"],
                         [[key, lang, curve[depth]] for key, data in results.items() for lang, curve in data.items()],
                         digits=3)
    summary = result["summary"]
    middle = summary["middle_depths"]
    return TableView(f"middle depths {middle[0]}–{middle[-1]}: mean gap, shrink vs none; gap at depth {depth}",
                     ["cond", "lang", "mid gap", "shrink", f"gap@{depth}"],
                     [[key, lang, row["mid_gap"], row["mid_shrink"], results[key][lang]["gap"][depth]]
                      for key, per_lang in summary["conditions"].items() for lang, row in per_lang.items()])


def _mean(values: list[float]) -> float:
    # A language's mean position in the projection, as `lsn-explorer analyze pca` prints it.
    return sum(values) / len(values)
