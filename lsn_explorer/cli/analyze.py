"""`lsn-explorer analyze centroids|pca|cevr|mknn|parallel`: latent-space analyses of last-token
states (Tezuka & Inoue), with and without interventions, as a table, JSON, CSV or PNG."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import (
    JSON_HELP,
    add_adapter_arg,
    add_intervene_arg,
    add_model_args,
    add_placement_args,
    add_session_args,
    lang_codes,
    open_session,
    session_model,
)

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers

ANALYSES = ("centroids", "pca", "cevr", "mknn", "parallel")  # = core.latent.analyses.ANALYSES (torch-free here)


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("analyze", help="latent-space analyses of last-token states (centroids, PCA, ...)",
                            description="States are the last token's at depth 0 (embeddings) and after each "
                                        "decoder layer; computed once per (model, text, intervention) and kept "
                                        "in the session.")
    parser.add_argument("analysis", choices=ANALYSES)
    add_session_args(parser)
    add_model_args(parser)
    add_placement_args(parser)
    add_adapter_arg(parser)
    parser.add_argument("--langs", required=True, help="languages compared with English, e.g. en,ja,zh")
    parser.add_argument("--corpus", help="folder with parallel text: <lang>.txt, FLORES or Tatoeba files "
                                         "(default: the demo corpus)")
    parser.add_argument("--lines", type=int, default=1000, help="the first N aligned lines (default 1000)")
    parser.add_argument("--layer", type=int, help="depth of the centroid matrix and the PCA (default: the middle)")
    parser.add_argument("--k", type=int, default=10, help="mknn: neighbours (default 10)")
    add_intervene_arg(parser)
    parser.add_argument("--random-baseline", action="store_true",
                        help="also each --intervene with random neurons matched per language and layer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random neurons (default 0)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default 32)")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    parser.add_argument("--csv", metavar="FILE", help="also write long-format rows to FILE")
    parser.add_argument("--png", metavar="FILE", help="also draw the figure to FILE")
    parser.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from lsn_explorer.core.latent.analyses import analyse, check_layer, csv_rows, gather, load_texts
    from lsn_explorer.core.latent.conditions import build_conditions
    from lsn_explorer.core.latent.measures import mutual_knn_check
    from lsn_explorer.paths import output_file

    for target, what in ((args.csv, "CSV file"), (args.png, "PNG file")):
        if target:
            output_file(target, what)
    if args.batch_size < 1:
        from lsn_explorer.errors import LsnError

        raise LsnError(f"--batch-size {args.batch_size} is not a batch", "give a positive number, e.g. 32")
    langs = lang_codes(args.langs) or []
    texts = load_texts(langs, args.corpus, args.lines)
    if args.analysis == "mknn":
        mutual_knn_check(min(len(lines) for lines in texts.lines.values()), args.k)
    with open_session(args) as session:
        conditions = build_conditions(args.intervene or [], args.random_baseline, session, args.seed)
        handle = session_model(args, session)
        check_layer(args.layer, handle.n_layers + 1)
        states = gather(handle, session, texts, conditions, batch_size=args.batch_size, progress=_progress())
    result = analyse(states, args.analysis, layer=args.layer, k=args.k)
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            rows = csv_rows(result)
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if args.png:
        from lsn_explorer.core.latent.figures import save_png

        save_png(result, args.png)
    if args.json:
        print(json.dumps(result))
    else:
        print(render(result))
        for target in (args.csv, args.png):
            if target:
                print(f"wrote {target}")
    return 0


def _progress() -> Any:
    shown: dict[str, int] = {}

    def report(label: str, done: int, total: int) -> None:
        if done == total and shown.get(label) != total:
            shown[label] = total
            print(f"  states {label}: {total} sentences", file=sys.stderr)
    return report


def render(result: dict[str, Any]) -> str:
    """The result as plain-text tables (depth down, one column per condition · language)."""
    labels = {c["key"]: c["label"] for c in result["conditions"]}
    analysis, results = result["analysis"], result["results"]
    out = [f"{analysis} · {', '.join(result['languages'])} · {min(result['sentences'].values())} sentences"]
    if analysis == "centroids":
        out.append(_curves({c: data["en"] for c, data in results.items()}, labels, "cos(en, L) centroids"))
        langs = result["languages"]
        out.append(f"\ncentroid cosine at depth {result['layer']} (none)")
        out.append("      " + "".join(f"{lang:>8}" for lang in langs))
        for lang, row in zip(langs, results["none"]["matrix"]):
            out.append(f"{lang:<6}" + "".join(f"{v:>8.3f}" for v in row))
    elif analysis == "pca":
        out.append(f"depth {result['layer']}: share of variance on PC1, PC2 and each language's mean position")
        for condition, data in results.items():
            first, second = data["explained"]
            out.append(f"{labels[condition]}: PC1 {100 * first:.1f} %, PC2 {100 * second:.1f} %")
            for lang, coords in data["coords"].items():
                n = len(coords)
                out.append(f"  {lang:<6} ({sum(c[0] for c in coords) / n:+.3f}, {sum(c[1] for c in coords) / n:+.3f})")
    elif analysis == "cevr":
        for threshold in next(iter(next(iter(results.values())).values())):
            curves = {c: {lang: counts[threshold] for lang, counts in data.items()} for c, data in results.items()}
            out.append(_curves(curves, labels, f"components for {100 * float(threshold):g} %", digits=0))
    elif analysis == "mknn":
        out.append(_curves(results, labels, f"mutual {result['k']}-NN alignment with en"))
        ties = sorted({(d, lang) for per_lang in result["tied"].values() for lang, shares in per_lang.items()
                       for d, share in enumerate(shares) if share > 0.5})
        if ties:
            where = ", ".join(f"{lang} at depth {d}" for d, lang in ties)
            out.append(f"\nnote: most sentences have tied neighbours ({where}): there the score reflects "
                       "the tie-break (lower line first), not the geometry")
    else:
        for measure in ("parallel", "nonparallel", "gap"):
            out.append(_curves({c: {lang: v[measure] for lang, v in data.items()} for c, data in results.items()},
                               labels, f"{measure} cosine" if measure != "gap" else "gap (parallel − non-parallel)"))
        summary = result["summary"]
        out.append(f"\nmiddle depths {summary['middle_depths'][0]}–{summary['middle_depths'][-1]}: mean gap and "
                   "shrink vs none")
        for condition, per_lang in summary["conditions"].items():
            for lang, row in per_lang.items():
                out.append(f"  {labels[condition]:<40} {lang:<5} gap {row['mid_gap']:.4f}  shrink {row['mid_shrink']:+.4f}")
    return "\n".join(out)


def _curves(curves: dict[str, dict[str, list[float]]], labels: dict[str, str], title: str, digits: int = 3) -> str:
    columns = [(c, lang) for c, per_lang in curves.items() for lang in per_lang]
    names = [lang if c == "none" else f"{lang}·{c}" for c, lang in columns]
    width = max(8, *(len(n) + 2 for n in names))
    lines = [f"\n{title}" + "".join(f"  [{c}] {labels[c]}" for c in curves if c != "none"),
             "depth" + "".join(f"{n:>{width}}" for n in names)]
    depths = len(next(iter(next(iter(curves.values())).values())))
    for depth in range(depths):
        lines.append(f"{depth:>5}" + "".join(f"{curves[c][lang][depth]:>{width}.{digits}f}" for c, lang in columns))
    return "\n".join(lines)
