"""Summary cells laid out as the papers' tables (languages down, rows across) and as a heat map.

Formats: plain text for a terminal, CSV (every field, one line per cell), Markdown, LaTeX
(booktabs), JSON, and a PNG heat map of Δ vs "none". A table cell reads `score ± half-width` of
its bootstrap CI, then its Δ. Accuracy is shown in % like the other metrics (it is stored as a
0–1 mean); CSV and JSON keep the stored numbers. matplotlib is imported only by `heat_map`.
Torch-free; nothing here computes statistics (that is `summary.py`).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lsn_explorer.core.evals.results import LOWER_IS_BETTER, RowInfo
from lsn_explorer.core.evals.summary import Cell
from lsn_explorer.errors import LsnError

TableFormat = Literal["text", "csv", "markdown", "latex"]

CSV_FIELDS = ("lang", "row", "kind", "value", "metric", "score", "low", "high", "n", "delta", "delta_low", "delta_high",
              "set_name")
_SCALE = {"accuracy": 100.0}  # shown in %, as the papers print it
_DIGITS = {"perplexity": 2}  # every other metric is a percentage: one decimal
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def columns(rows: list[RowInfo]) -> list[tuple[str, str]]:
    """The table's columns as (cell row key, header), in the papers' order.

    "none" first, then grid and intervene rows in `rows` order, then one aggregated random column
    per base row (`random:<base>`). A grid column is headed by its value (`p90`), prefixed with its
    set name when the grid rows use more than one set; an intervene column by its row key; a
    random column by `random (<base's header>)`. Per-seed random rows get no column.
    """
    grid_sets = {r.set_name for r in rows if r.kind == "grid"}
    headers: dict[str, str] = {}
    for r in rows:
        if r.kind == "grid":
            headers[r.key] = f"{r.set_name} {r.value}" if len(grid_sets) > 1 else str(r.value)
        elif r.kind in ("none", "intervene"):
            headers[r.key] = r.key
    ordered = [(r.key, headers[r.key]) for r in rows if r.kind == "none"]
    ordered += [(r.key, headers[r.key]) for r in rows if r.kind in ("grid", "intervene")]
    for base in dict.fromkeys(r.base for r in rows if r.kind == "random" and r.base is not None):
        ordered.append((f"random:{base}", f"random ({headers.get(base, base)})"))
    return ordered


def render(cells: list[Cell], rows: list[RowInfo], fmt: TableFormat) -> str:
    """The cells as one table in `fmt`.

    Args:
        cells: from `summarize` (one task: the first cell's metric names the table).
        rows: the evaluation's rows, which fix the column order and headers.
        fmt: text | csv | markdown | latex.

    Returns:
        The table, ending in a newline; for no cells, a table without body lines.
    """
    if fmt == "csv":
        return _csv(cells)
    cols = columns(rows)
    langs = list(dict.fromkeys(c.lang for c in cells))
    at = {(c.lang, c.row): c for c in cells}
    body = [[lang] + [_cell_text(at.get((lang, key)), fmt) for key, _ in cols] for lang in langs]
    header = ["lang"] + [h for _, h in cols]
    title = table_title(cells, rows)
    if fmt == "text":
        return _text(title, header, body)
    if fmt == "markdown":
        return _markdown(title, header, body)
    if fmt == "latex":
        return _latex(title, header, body)
    raise LsnError(f"unknown table format {fmt!r}", "one of: text, csv, markdown, latex")


def cells_json(cells: list[Cell]) -> list[dict[str, Any]]:
    """Every cell as a JSON-ready dict (all fields, stored units)."""
    return [c.to_json() for c in cells]


def heat_map(cells: list[Cell], rows: list[RowInfo], path: str | Path, *, title: str | None = None) -> Path:
    """Write a PNG heat map of Δ vs "none": languages down, the table's non-"none" columns across.

    The colour is centred on 0 (white) and signed so that red always means worse than "none" and
    blue better: for perplexity, where lower is better, the colour follows −Δ. Each square is annotated with Δ as the tables
    print it; a missing cell is grey.

    Args:
        cells: from `summarize`.
        rows: the evaluation's rows (column order and headers).
        path: the PNG to write.
        title: the figure title; defaults to "Δ <metric> vs none".

    Returns:
        The path written.

    Raises:
        LsnError: matplotlib is not installed.
    """
    from lsn_explorer.core.plotting import pyplot

    plt = pyplot()

    metric = cells[0].metric if cells else ""
    langs, cols, shown, goodness = _heat_grid(cells, rows)
    finite = np.abs(goodness[np.isfinite(goodness)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    fig, ax = plt.subplots(figsize=(2.0 + 1.1 * max(1, len(cols)), 1.6 + 0.45 * max(1, len(langs))))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(goodness), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(langs)), langs)
    digits = _DIGITS.get(metric, 1)
    for i in range(len(langs)):
        for j in range(len(cols)):
            if math.isfinite(shown[i, j]):
                dark = abs(goodness[i, j]) > 0.6 * limit  # white on the saturated ends of RdBu
                ax.text(j, i, f"{shown[i, j]:+.{digits}f}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    fig.colorbar(image, ax=ax, label="−Δ (lower is better)" if metric in LOWER_IS_BETTER else "Δ")
    ax.set_title(title or f"Δ {metric} vs none")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _heat_grid(cells: list[Cell], rows: list[RowInfo]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Languages, column headers, Δ in display units Float[lang, column] (NaN where missing),
    and the colour values: Δ signed so that positive is better (−Δ for lower-is-better metrics)."""
    metric = cells[0].metric if cells else ""
    none_keys = {r.key for r in rows if r.kind == "none"}
    cols = [(k, h) for k, h in columns(rows) if k not in none_keys]
    langs = list(dict.fromkeys(c.lang for c in cells))
    at = {(c.lang, c.row): c for c in cells}
    shown = np.full((len(langs), len(cols)), np.nan)
    for i, lang in enumerate(langs):
        for j, (key, _) in enumerate(cols):
            cell = at.get((lang, key))
            if cell is not None and cell.delta is not None:
                shown[i, j] = cell.delta * _SCALE.get(metric, 1.0)
    goodness = -shown if metric in LOWER_IS_BETTER else shown
    return langs, [h for _, h in cols], shown, goodness


def cell_numbers(cell: Cell) -> tuple[str, str, str | None]:
    """A cell's score, its CI half-width and its signed Δ (None for "none") as the tables print
    them: in display units (accuracy in %), with the metric's digits."""
    scale, digits = _SCALE.get(cell.metric, 1.0), _DIGITS.get(cell.metric, 1)
    delta = None if cell.delta is None else f"{cell.delta * scale:+.{digits}f}"
    return f"{cell.score * scale:.{digits}f}", f"{(cell.high - cell.low) / 2 * scale:.{digits}f}", delta


def _cell_text(cell: Cell | None, fmt: TableFormat) -> str:
    if cell is None:
        return "--" if fmt == "latex" else "–"
    score, half, delta = cell_numbers(cell)
    mark = "*" if significant(cell) else ""
    if fmt == "latex":
        return f"${score} \\pm {half}$" + ("" if delta is None else f" ($\\Delta$ {delta}{mark})")
    return f"{score} ± {half}" + ("" if delta is None else f" Δ{delta}{mark}")


def significant(cell: Cell) -> bool:
    """Whether the paired interval of Δ excludes 0 (marked `*` in the tables)."""
    if cell.delta_low is None or cell.delta_high is None:
        return False
    return cell.delta_low > 0 or cell.delta_high < 0


def table_title(cells: list[Cell], rows: list[RowInfo]) -> str:
    """What the table shows: `accuracy (%); set: lape` (the set when the grid uses one)."""
    metric = cells[0].metric if cells else ""
    sets = {r.set_name for r in rows if r.kind == "grid"}
    shown = "accuracy (%)" if metric == "accuracy" else metric
    return (shown + (f"; set: {next(iter(sets))}" if len(sets) == 1 else "")
            + "; Δ vs none, * where its paired 95% interval excludes 0")


def _text(title: str, header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [title] + ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *body]]
    return "\n".join(lines) + "\n"


def _markdown(title: str, header: list[str], body: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    rule = "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"
    return "\n".join([f"**{title}**", "", line(header), rule, *(line(b) for b in body)]) + "\n"


def _latex(title: str, header: list[str], body: list[list[str]]) -> str:
    def esc(text: str) -> str:
        return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)

    lines = [r"\begin{table}", r"\centering",
             rf"\caption{{{esc(title)}; score $\pm$ bootstrap CI half-width, $\Delta$ vs none}}",
             rf"\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}", r"\toprule",
             " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join([esc(b[0]), *b[1:]]) + r" \\" for b in body]  # cell texts are already LaTeX
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _csv(cells: list[Cell]) -> str:
    extras = sorted({k for c in cells for k in c.extra})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_FIELDS, *extras])
    for c in cells:
        fields = [getattr(c, f) for f in CSV_FIELDS] + [c.extra.get(k) for k in extras]
        writer.writerow(["" if v is None else v for v in fields])
    return out.getvalue()
