"""What an evaluation will run: the task, languages, data, and its rows. Torch-free.

`EvalSpec` is validated on construction and stored with the evaluation, so a resumed run does
exactly what the first one started. Its rows come from `build_rows`:

- the un-intervened row, `none`, always first (every Δ is against it);
- `--grid SET:values=zero,mean,p10,p90` — one row per value; in language L's cells it writes the
  set's L neurons with L's own statistics (Mondal et al.'s protocol). `--grid SET:LANG:values=...`
  fixes LANG's neurons and statistics for every evaluated language (cross-language cells, as PPXC).
  Modifiers after the values apply to each (`values=zero,p90@prompt/a`);
- `--intervene SPEC` — one row each, applied as written in every language (join several
  interventions into one row with ` + `);
- `--random-baseline K` — K rows per grid row: the same value written into neurons drawn at random
  to match the set per language and layer (SCIENCE.md §8), seeds 1…K.

A set named by the user is pinned to its record id (`#12`) when the rows are built, so a set
re-identified later under the same name does not change a running or resumed evaluation.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from lsn_explorer.core.evals.results import RowInfo
from lsn_explorer.core.specs import Spec, one_of
from lsn_explorer.core.vocab import STAT_VALUES
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.session.store import Session

EVAL_TASKS: tuple[str, ...] = ("xnli", "xquad", "mkqa", "ppl")
PROTOCOLS: tuple[str, ...] = ("consistent", "faithful")
GRID_VALUES: tuple[str, ...] = ("zero",) + STAT_VALUES
GRID_SYNTAX = "SET[:LANG]:values=V1,V2,...[@POSITIONS][/SITE], e.g. lape:values=zero,mean,p10,p90"
RANDOM_PREFIX = "random"  # random rows' set names are random1 … randomK (in-memory sets, see runner)
_GRID = re.compile(r"^(?P<set>#\d+|[A-Za-z_][\w.-]*)(?::(?P<lang>[A-Za-z_-]+))?:values=(?P<values>[^@/]+)"
                   r"(?P<modifiers>[@/].*)?$")


class EvalSpecError(LsnError):
    """An evaluation that cannot be run as asked (bad grid, task, limit...)."""


@dataclass(frozen=True)
class EvalSpec(Spec):
    """One evaluation: every (language × row) cell over the split's samples (or the first `limit`)."""

    KIND: ClassVar[str] = "eval"
    task: str
    langs: list[str]
    rows: list[dict[str, Any]]  # RowInfo.to_json() of each row, "none" first
    data_dir: str | None = None  # None: the demo samples; a folder; or hf:DATASET
    split: str = "test"
    limit: int | None = None
    protocol: str = "consistent"  # consistent | faithful (Mondal's / Tezuka's original code)
    batch_size: int = 16  # samples per forward (XNLI: ×3 options)
    seed: int = 0  # random-baseline draws and bootstrap resampling
    adapter: str | None = None  # a session adapter (masked-LoRA fine-tune) loaded before scoring

    def __post_init__(self) -> None:
        if self.task not in EVAL_TASKS:  # a registry by name: a typo gets "did you mean"
            close = difflib.get_close_matches(str(self.task), EVAL_TASKS, n=1)
            raise EvalSpecError(f"unknown task {self.task!r}",
                                (f"did you mean {close[0]}? " if close else "") + f"tasks: {', '.join(EVAL_TASKS)}")
        one_of("protocol", self.protocol, PROTOCOLS)
        if not self.langs:
            raise EvalSpecError("an evaluation needs at least one language", "pass --langs, e.g. --langs en,fr")
        if len(set(self.langs)) != len(self.langs):
            raise EvalSpecError(f"languages repeat in {','.join(self.langs)}", "name each language once")
        if self.limit is not None and self.limit < 1:
            raise EvalSpecError(f"--limit must be at least 1 (got {self.limit})", "leave it out to use every sample")
        if not 1 <= self.batch_size <= 4096:
            raise EvalSpecError(f"--batch-size must be between 1 and 4096 (got {self.batch_size})", "e.g. 16")
        rows = self.row_infos()
        if not rows or rows[0].kind != "none":
            raise EvalSpecError("an evaluation's first row must be the un-intervened one", "build rows with build_rows")
        keys = [row.key for row in rows]
        if len(set(keys)) != len(keys):
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            raise EvalSpecError(f"rows repeat: {', '.join(repeated)}", "name each grid value and intervention once")

    def row_infos(self) -> list[RowInfo]:
        return [RowInfo.from_json(row) for row in self.rows]

    def title(self) -> str:
        return f"eval {self.task} {','.join(self.langs)} ({len(self.rows)} rows)"


def parse_grid(text: str) -> tuple[str, str | None, list[str], str]:
    """`SET[:LANG]:values=V1,V2[@POS][/SITE]` → (set, lang or None, values, modifiers)."""
    from lsn_explorer.core.data.languages import get_language

    match = _GRID.match(text.strip())
    if match is None:
        raise EvalSpecError(f"bad --grid {text!r}", f"write {GRID_SYNTAX}")
    values = [v.strip().lower() for v in match["values"].split(",") if v.strip()]
    bad = [v for v in values if v not in GRID_VALUES]
    if not values:
        raise EvalSpecError(f"--grid {text!r} names no values", f"values: {', '.join(GRID_VALUES)}")
    if bad:
        raise EvalSpecError(f"--grid {text!r}: {', '.join(bad)} "
                            f"{'is not a grid value' if len(bad) == 1 else 'are not grid values'}",
                            f"values: {', '.join(GRID_VALUES)}")
    if len(set(values)) != len(values):
        raise EvalSpecError(f"--grid {text!r} repeats a value", "name each value once")
    lang = get_language(match["lang"]).code if match["lang"] else None
    return match["set"], lang, values, match["modifiers"] or ""


def build_rows(grids: Sequence[str] = (), intervene: Sequence[str] = (), random_baseline: int = 0,
               session: Session | None = None) -> list[RowInfo]:
    """The rows of an evaluation (module doc), checked for syntax; stored sets pinned to record ids.

    Raises:
        EvalSpecError / InterventionError: bad syntax, an unknown set, or random baselines without a grid.
    """
    from lsn_explorer.core.interventions.resolve import pin_set, pin_spec
    from lsn_explorer.core.interventions.spec import InterventionError, parse_intervention

    if not 0 <= random_baseline <= 100:
        raise EvalSpecError(f"--random-baseline must be between 0 and 100 (got {random_baseline})", "e.g. 3")
    rows = [RowInfo("none", "none")]
    grid_rows = []
    for text in grids:
        set_name, lang, values, modifiers = parse_grid(text)
        ref = pin_set(set_name, session)
        where = f"{ref}:{lang}" if lang else f"{ref}:{{lang}}"
        for value in values:
            key = f"{set_name}{':' + lang if lang else ''}={value}{modifiers}"
            try:  # the modifiers' syntax, named as the user wrote it (not the pinned '#12:en=...')
                parse_intervention(f"{where.replace('{lang}', 'en')}={value}{modifiers}")
            except InterventionError as exc:
                problem = exc.message.split("': ", 1)[-1]  # after "bad intervention '#12:en=...': "
                raise EvalSpecError(f"--grid {text!r}: {problem}", exc.hint) from None
            grid_rows.append(RowInfo(key, "grid", (f"{where}={value}{modifiers}",), value, set_name))
    rows += grid_rows
    for text in intervene:
        parts = [part.strip() for part in text.split(" + ") if part.strip()]
        if not parts:
            raise EvalSpecError("an empty --intervene", "e.g. --intervene lape:zh=zero")
        specs = tuple(pin_spec(parse_intervention(part).spec, session) for part in parts)
        rows.append(RowInfo(" + ".join(parts), "intervene", specs))
    if random_baseline and not grid_rows:
        raise EvalSpecError("random baselines are matched to a grid's neuron set, and no --grid was given",
                            "add --grid SET:values=..., or leave out --random-baseline")
    for base in grid_rows:
        for seed in range(1, random_baseline + 1):
            spec = f"{RANDOM_PREFIX}{seed}:" + base.specs[0].split(":", 1)[1]  # same language part and value
            rows.append(RowInfo(f"{RANDOM_PREFIX}{seed}:{base.key}", "random", (spec,), base.value, base.set_name,
                                base.key, seed))
    return rows


def random_reference(row: RowInfo, rows: Sequence[RowInfo]) -> str:
    """The pinned set (`#12`) a random row's neurons are matched to."""
    base = next(r for r in rows if r.key == row.base)
    return base.specs[0].split(":", 1)[0]


def cell_specs(row: RowInfo, lang: str) -> list[str]:
    """The intervention specs of `row` in language `lang`'s cells."""
    return [spec.replace("{lang}", lang) for spec in row.specs]

