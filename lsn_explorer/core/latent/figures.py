"""PNG figures of the latent-space analyses, in the papers' style: depth on x, one line per
language, one line style per condition (solid: none; dashed: intervened; dotted: random).

Each figure is drawn from an `analyses.analyse` result only, so what the PNG shows is exactly what
`--json` prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STYLES = {"none": "-", "iv": "--", "random": ":"}


def _style(condition: str) -> str:
    return STYLES["random" if condition.startswith("random") else "iv" if condition.startswith("iv") else "none"]


def _colour(result: dict[str, Any], lang: str) -> str:
    """A language's colour: its place in the result's languages (English first), as in the app."""
    return f"C{result['languages'].index(lang) % 10}"


def _labels(result: dict[str, Any]) -> dict[str, str]:
    return {c["key"]: c["label"] for c in result["conditions"]}


def save_png(result: dict[str, Any], path: str | Path) -> Path:
    """Draw `result` (any analysis) and write it to `path`; returns the path."""
    from lsn_explorer.core.plotting import pyplot

    plt = pyplot()
    draw = {"centroids": _centroids, "pca": _pca, "cevr": _cevr, "mknn": _mknn, "parallel": _parallel}
    fig = draw[result["analysis"]](plt, result)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _lines(ax: Any, result: dict[str, Any], curves: dict[str, dict[str, list[float]]], ylabel: str) -> None:
    """One line per (condition, language): colour by language, style by condition."""
    labels = _labels(result)
    for condition, per_lang in curves.items():
        for lang, curve in per_lang.items():
            colour = _colour(result, lang)
            name = lang if condition == "none" else f"{lang} · {labels[condition]}"
            ax.plot(range(len(curve)), curve, _style(condition), color=colour, marker=".", label=name)
    ax.set_xlabel("depth (0 = embeddings, l = after layer l)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _centroids(plt: Any, result: dict[str, Any]) -> Any:
    fig, (curve_ax, matrix_ax) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    _lines(curve_ax, result, {c: data["en"] for c, data in result["results"].items()}, "cosine(en centroid, L2 centroid)")
    curve_ax.set_title("centroid similarity to English")
    matrix = result["results"]["none"]["matrix"]
    langs = result["languages"]
    image = matrix_ax.imshow(matrix, cmap="viridis", vmin=min(min(r) for r in matrix), vmax=1.0)
    matrix_ax.set_xticks(range(len(langs)), langs)
    matrix_ax.set_yticks(range(len(langs)), langs)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            matrix_ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w")
    matrix_ax.set_title(f"centroid cosine at depth {result['layer']} (none)")
    fig.colorbar(image, ax=matrix_ax, fraction=0.046)
    return fig


def _pca(plt: Any, result: dict[str, Any]) -> Any:
    labels = _labels(result)
    conditions = list(result["results"])
    fig, axes = plt.subplots(1, len(conditions), figsize=(5 * len(conditions), 4.5), squeeze=False)
    for ax, condition in zip(axes[0], conditions):
        data = result["results"][condition]
        for lang, coords in data["coords"].items():
            xs, ys = [c[0] for c in coords], [c[1] for c in coords]
            ax.scatter(xs, ys, s=6, alpha=0.6, color=_colour(result, lang), label=lang)
        first, second = data["explained"]
        ax.set_xlabel(f"PC1 ({100 * first:.1f} %)")
        ax.set_ylabel(f"PC2 ({100 * second:.1f} %)")
        ax.set_title(f"depth {result['layer']} · {labels[condition]}")
        ax.legend(fontsize=7, markerscale=2)
    return fig


def _cevr(plt: Any, result: dict[str, Any]) -> Any:
    thresholds = list(next(iter(next(iter(result["results"].values())).values())))
    fig, axes = plt.subplots(1, len(thresholds), figsize=(5 * len(thresholds), 4))
    for ax, threshold in zip(axes, thresholds):
        curves = {c: {lang: counts[threshold] for lang, counts in data.items()} for c, data in result["results"].items()}
        _lines(ax, result, curves, "components")
        ax.set_title(f"components for {100 * float(threshold):g} % of the variance")
    return fig


def _mknn(plt: Any, result: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _lines(ax, result, result["results"], f"mutual {result['k']}-NN alignment with English")
    ax.set_title("mutual k-NN alignment of parallel en–L2 states")
    return fig


def _parallel(plt: Any, result: dict[str, Any]) -> Any:
    """Per language: parallel (solid) and non-parallel (dotted) cosine per condition above, the
    gap below, with the middle depths shaded."""
    labels = _labels(result)
    langs = [lang for lang in result["languages"] if lang != "en"]
    fig, axes = plt.subplots(2, len(langs), figsize=(4.5 * len(langs), 7), squeeze=False, sharex=True)
    middle = result["summary"]["middle_depths"]
    for column, lang in enumerate(langs):
        cos_ax, gap_ax = axes[0][column], axes[1][column]
        for number, (condition, per_lang) in enumerate(result["results"].items()):
            curves, colour = per_lang[lang], f"C{number % 10}"
            depths = range(len(curves["parallel"]))
            cos_ax.plot(depths, curves["parallel"], "-", color=colour, marker=".", label=f"parallel · {labels[condition]}")
            cos_ax.plot(depths, curves["nonparallel"], ":", color=colour, label=f"non-parallel · {labels[condition]}")
            gap_ax.plot(depths, curves["gap"], _style(condition), color=colour, marker=".", label=labels[condition])
        gap_ax.axvspan(middle[0] - 0.5, middle[-1] + 0.5, color="0.9", zorder=0)
        cos_ax.set_title(f"en–{lang}: parallel vs non-parallel")
        gap_ax.set_title(f"en–{lang}: gap (shaded: middle layers)")
        cos_ax.set_ylabel("mean cosine")
        gap_ax.set_ylabel("parallel − non-parallel")
        gap_ax.set_xlabel("depth (0 = embeddings, l = after layer l)")
        for ax in (cos_ax, gap_ax):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
    return fig
