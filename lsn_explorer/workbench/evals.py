"""Evaluations for front ends: the Evaluate form's request (checked here, so a typo never starts
a process), the list of a session's evaluations, and one evaluation's table as cells with a heat
class each. No Textual; numpy only inside `eval_view` (through core's summary).

Heat classes colour a cell by its Δ against "none" and the Δ's paired bootstrap CI
(`core.evals.summary`), signed so that "worse" always means worse than the un-intervened model
(for perplexity, lower is better):
- `base`: the "none" column; `missing`: no samples in the cell; `same`: Δ is 0, or unknown;
- `worse-1` / `better-1`: Δ's CI includes 0 (it may be noise);
- `worse-2` / `better-2`: the CI excludes 0;
- `worse-3` / `better-3`: the CI excludes 0 and |Δ| is at least half the table's largest
  such |Δ| (the strongest effects of this table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

from lsn_explorer.core.data.languages import parse_languages
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.evals.results import RowInfo
    from lsn_explorer.core.evals.summary import Cell
    from lsn_explorer.session.evals import EvalRow

HeatClass = Literal["base", "missing", "same", "worse-1", "worse-2", "worse-3", "better-1", "better-2", "better-3"]
HEAT_CLASSES: tuple[str, ...] = ("base", "missing", "same", "worse-1", "worse-2", "worse-3",
                                 "better-1", "better-2", "better-3")
DEFAULT_VALUES = "zero,mean,p10,p90"  # the grid of Mondal et al.'s deactivation / amplification tables


@dataclass(frozen=True)
class EvalRequest:
    """What the Evaluate form asks for: rows from the switched-on interventions and/or a grid
    (one stored set × values, plus K matched random baselines), over languages."""

    task: str = "xnli"
    langs: tuple[str, ...] = ()
    switched_on: bool = True  # one row per switched-on intervention row
    grid_set: str = ""  # a stored neuron set; "" = no grid
    grid_values: str = DEFAULT_VALUES
    random_baseline: int = 0  # K random sets matched to each grid row
    limit: int | None = None  # the first N samples per language
    name: str = ""  # "" = TASK-N
    data_dir: str = ""  # "" = the demo samples
    adapter: str = ""  # a session adapter loaded before scoring; "" = the base model

    @classmethod
    def from_fields(cls, *, task: str, langs: str, switched_on: bool, grid_set: str, grid_values: str,
                    random_baseline: str, limit: str, name: str, data_dir: str,
                    adapter: str = "") -> EvalRequest:
        """The request from the form's text fields.

        Raises:
            LsnError / LanguageError: a number that is not one, or an unknown language.
        """
        if grid_set.strip() and not grid_values.strip():
            raise LsnError(f"the grid over {grid_set.strip()!r} has no values",
                           f"type values such as {DEFAULT_VALUES}, or choose '(no grid)'")
        return cls(task=task, langs=tuple(lang.code for lang in parse_languages(langs)), switched_on=switched_on,
                   grid_set=grid_set.strip(), grid_values=grid_values.strip(),
                   random_baseline=_count(random_baseline, "random baselines", 0) or 0,
                   limit=_count(limit, "the sample limit", None), name=name.strip(), data_dir=data_dir.strip(),
                   adapter=adapter.strip())

    def grids(self) -> list[str]:
        """The grid in the CLI's `--grid` syntax (none without a set)."""
        return [f"{self.grid_set}:values={self.grid_values}"] if self.grid_set else []


@dataclass(frozen=True)
class EvalListRow:
    """One evaluation of the session, as the Results list shows it."""

    name: str
    task: str
    langs: str  # "en,zh"
    columns: int  # table columns beyond "none"
    state: str  # finished | running | queued | interrupted | cancelled | failed | partial
    job: int | None


@dataclass(frozen=True)
class ResultCell:
    text: str  # "45.0 ± 12.5" (score ± CI half-width, display units), "–" when missing
    delta: str  # "Δ-5.0", "Δ-5.0*" when its CI excludes 0; "" for "none" and missing cells
    heat: HeatClass


@dataclass(frozen=True)
class EvalView:
    """One evaluation's table: languages down, rows across, as the CLI's `eval show` prints it."""

    name: str
    task: str
    title: str  # "accuracy (%); set: lape"
    status: str  # "finished · 24 scored samples"
    columns: list[str]  # headers after "lang"
    rows: list[tuple[str, list[ResultCell]]] = field(default_factory=list)  # (lang, cells)


def list_row(evaluation: EvalRow, job_state: str | None) -> EvalListRow:
    spec = evaluation.spec
    rows = spec.get("rows", [])
    columns = sum(1 for r in rows if r.get("kind") in ("grid", "intervene"))
    columns += len({r.get("base") for r in rows if r.get("kind") == "random"})
    state = "finished" if evaluation.finished else (job_state or "partial")
    return EvalListRow(evaluation.name, str(spec.get("task", "")), ",".join(spec.get("langs", [])), columns, state,
                       evaluation.job)


def eval_view(evaluation: EvalRow, rows: list[RowInfo], cells: list[Cell], samples: int, state: str) -> EvalView:
    """The table of `cells` (from `summarize`) with each cell's text and heat class."""
    from lsn_explorer.core.evals.results import LOWER_IS_BETTER
    from lsn_explorer.core.evals.tables import cell_numbers, columns, significant, table_title

    cols = columns(rows)
    at = {(c.lang, c.row): c for c in cells}
    none_keys = {r.key for r in rows if r.kind == "none"}

    def goodness(cell: Cell) -> float:
        delta = cell.delta or 0.0
        return -delta if cell.metric in LOWER_IS_BETTER else delta

    strongest = max((abs(goodness(c)) for c in cells if c.row not in none_keys and significant(c)), default=0.0)
    table = []
    for lang in dict.fromkeys(c.lang for c in cells):
        shown = []
        for key, _ in cols:
            cell = at.get((lang, key))
            if cell is None:
                shown.append(ResultCell("–", "", "missing"))
                continue
            score, half, delta = cell_numbers(cell)
            heat = "base" if key in none_keys else heat_class(goodness(cell), significant(cell), strongest,
                                                                  known=cell.delta is not None)
            mark = "*" if significant(cell) else ""  # as the CLI's tables mark it
            shown.append(ResultCell(f"{score} ± {half}", f"Δ{delta}{mark}" if delta is not None else "", heat))
        table.append((lang, shown))
    what = "finished" if state == "finished" else f"{state} (partial results)"
    return EvalView(evaluation.name, str(evaluation.spec.get("task", "")),
                    table_title(cells, rows) if cells else "no samples scored yet",
                    f"{what} · {samples:,} scored samples", [header for _, header in cols], table)


def heat_class(goodness: float, significant: bool, strongest: float, *, known: bool = True) -> HeatClass:
    """A cell's heat class (module doc) from its signed Δ (positive = better), whether Δ's CI
    excludes 0, and the table's largest significant |Δ|."""
    if not known or goodness == 0:
        return "same"
    side = "better" if goodness > 0 else "worse"
    level = 1 if not significant else (3 if abs(goodness) >= 0.5 * strongest else 2)
    return cast(HeatClass, f"{side}-{level}")


def _count(text: str, what: str, empty: int | None) -> int | None:
    text = text.strip().replace(",", "")
    if not text:
        return empty
    if not text.isdigit():
        raise LsnError(f"{what} must be a whole number (got {text!r})", "leave it empty for the default")
    return int(text)
