"""`lsn-explorer identify [run | show | compare | export | import]`: language-specific or transfer
neurons, found by a registered method and stored in a session as named neuron sets."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsn_explorer.cli.common import add_model_args, add_placement_args, add_session_args, lang_codes, load, open_session
from lsn_explorer.core.neurons.methods import METHODS
from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.cli.common import Subparsers
    from lsn_explorer.core.neurons.neuron_set import NeuronSet
    from lsn_explorer.session.store import Session


def register(sub: Subparsers) -> None:
    """Add `identify` to the command parser's sub-parsers."""
    ident = sub.add_parser("identify", help="find language-specific or transfer neurons")
    ident.add_argument("action", nargs="?", choices=("run", "show", "compare", "export", "import"), default="run")
    add_model_args(ident)
    add_placement_args(ident)
    add_session_args(ident)
    ident.add_argument("--method", default="lape", help=" | ".join(METHODS))  # the registry's names
    ident.add_argument("--langs", help="comma-separated language codes")
    ident.add_argument("--name", help="name to store the set under (default: the method)")
    ident.add_argument("--top-rate", type=float, help="LAPE: share of neurons kept (default 0.01)")
    ident.add_argument("--filter-rate", type=float, help="LAPE: probability quantile τ (default 0.95)")
    ident.add_argument("--bar-ratio", type=float, help="LAPE: assignment quantile (default 0.95)")
    ident.add_argument("--variant", choices=("consistent", "faithful"), help="LAPE thresholds: Tang or Mondal code")
    ident.add_argument("--rate", type=float, help="Act Prob 90p: share per language (default 0.00125)")
    ident.add_argument("--top-n", type=int, help="type1/type2: neurons kept (default 1000)")
    ident.add_argument("--depth", type=float, help="type1/type2: candidate share of layers (20/32, 12/32)")
    ident.add_argument("--layers", help="type1/type2: candidate layers instead of --depth, e.g. 1-4 or 0,2,5")
    ident.add_argument("--replace", action="store_true",
                       help="replace a stored set even when a switched-on row in the app uses it")
    ident.add_argument("--seed", type=int, help="random / split seed (default 0)")
    ident.add_argument("--site", choices=("g", "s", "a"), help="use statistics of this site")
    ident.add_argument("--mode", choices=("consistent", "faithful"), help="use statistics of this mode")
    ident.add_argument("--reference", help="random: the stored set to match")
    ident.add_argument("--corpus", help="type1/type2: folder with parallel files (default: demo corpus)")
    ident.add_argument("--sets", help="compare: comma-separated stored set names")
    ident.add_argument("--file", help="import: a .json or Tang-style .pth neuron file")
    ident.add_argument("--out", help="export: FILE.json or FILE.pth")
    ident.set_defaults(func=cmd_identify)


def cmd_identify(args: argparse.Namespace) -> int:
    from lsn_explorer.core.neurons.lape import ACTPROB90P_NOTE
    from lsn_explorer.core.neurons.methods import NEEDS, check_method
    from lsn_explorer.core.neurons.runs import identify

    langs = lang_codes(args.langs)
    method = check_method(args.method)
    params = _method_params(args, method) if args.action == "run" else {}
    creates = args.action == "import" or (args.action == "run" and NEEDS[method] == "model")
    with open_session(args, create=creates) as session:
        if args.action == "compare":
            return _compare(args, session)
        if args.action in ("show", "export"):
            return _show_or_export(args, session, langs)
        if args.action == "import":
            return _import(args, session, langs)
        name = args.name or method
        _check_replace(session, name, args.replace)
        if method == "actprob90p":
            print(f"note: {ACTPROB90P_NOTE}", file=sys.stderr)
        handle = load(args) if NEEDS[method] == "model" else None
        neuron_set, record = identify(session, method, langs=langs, params=params, handle=handle,
                                      corpus_dir=args.corpus, reference=args.reference, name=name,
                                      progress=_sentence_progress())
    _print_neuron_set(neuron_set, name)
    print(f"stored as neuron set {name!r} (record {record})")
    return 0


def _compare(args: argparse.Namespace, session: Session) -> int:
    from lsn_explorer.core.neurons.runs import load_neuron_set
    from lsn_explorer.core.neurons.specificity import jaccard_matrix, language_sets

    names = [n.strip() for n in (args.sets or "").split(",") if n.strip()]
    if not names:
        raise LsnError("nothing to compare", "pass --sets NAME[,NAME...] (stored neuron sets)")
    sets = [load_neuron_set(session, n) for n in names]
    if len(sets) == 1:
        order, matrix = jaccard_matrix(language_sets(sets[0]))
        title = f"Jaccard between languages of {names[0]}"
    else:
        pooled = {n: set().union(*(s.as_set(l) for l in s.languages)) for n, s in zip(names, sets)}
        order, matrix = jaccard_matrix(pooled)
        title = "Jaccard between methods (all languages pooled)"
    print(title)
    print(" " * 12 + "".join(f"{n[:9]:>10}" for n in order))
    for name, row in zip(order, matrix):
        print(f"{name[:11]:<12}" + "".join(f"{v:>10.2f}" for v in row))
    return 0


def _show_or_export(args: argparse.Namespace, session: Session, langs: list[str] | None) -> int:
    from lsn_explorer.core.neurons.runs import load_neuron_set, specificity
    from lsn_explorer.paths import output_file

    if args.action == "export":
        if not args.out:
            raise LsnError("no output file", "pass --out FILE.json or FILE.pth")
        output_file(args.out)
    neuron_set = load_neuron_set(session, args.name or "lape")
    if args.action == "export":
        if args.out.endswith(".pth"):
            order = neuron_set.save_tang_pth(args.out)
            print(f"wrote {args.out} (languages in order: {', '.join(order)})")
        else:
            neuron_set.save_json(args.out)
            print(f"wrote {args.out}")
        return 0
    _print_neuron_set(neuron_set, args.name or "lape")
    for lang, row in specificity(session, neuron_set, langs).items():
        if not row["neurons"]:
            print(f"{lang}: no neurons in this set")
            continue
        print(f"{lang}: mean η² {row['mean_eta2']:.3f}, p<0.05 & η²≥0.1: {row['share_p05_eta01']:.0%}, "
              f"η²≥0.25: {row['share_p05_eta025']:.0%}")
    return 0


def _import(args: argparse.Namespace, session: Session, langs: list[str] | None) -> int:
    from lsn_explorer.core.neurons.runs import import_neuron_set
    from lsn_explorer.paths import input_file

    if not args.file:
        raise LsnError("no file to import", "pass --file FILE.json or FILE.pth")
    input_file(args.file, "neuron file")
    name = args.name or Path(args.file).stem
    neuron_set, _ = import_neuron_set(session, args.file, load(args), langs, name)
    _print_neuron_set(neuron_set, name)
    return 0


def _check_replace(session: Session, name: str, replace: bool) -> None:
    """The workbench's check that a switched-on row's set is never replaced silently, with the
    way out said in flags."""
    from lsn_explorer.errors import SetInUse
    from lsn_explorer.workbench.state import check_set_not_in_use

    try:
        check_set_not_in_use(session, name, replace)
    except SetInUse as exc:
        raise SetInUse(f"neuron set {name!r} is used by the switched-on row {', '.join(exc.rows)} in the app",
                       f"store it under a new name (--name {exc.free_name}), or pass --replace",
                       name=name, rows=exc.rows, free_name=exc.free_name) from None


def _method_params(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """The flags given for `method`, checked against the registry before any model work."""
    from lsn_explorer.core.neurons.methods import PARAMS, STATS_SELECTORS, check_params

    names = [p.name for p in PARAMS[method]] + (list(STATS_SELECTORS) if method in ("lape", "actprob90p") else [])
    given = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    for flag in ("top_rate", "filter_rate", "bar_ratio", "variant", "rate", "top_n", "depth", "layers"):
        if getattr(args, flag, None) is not None and flag not in names:
            raise LsnError(f"--{flag.replace('_', '-')} is not a parameter of {method}",
                           f"{method} takes {', '.join('--' + n.replace('_', '-') for n in names) or 'no parameters'}")
    return check_params(method, given)


def _print_neuron_set(neuron_set: NeuronSet, name: str | None = None) -> None:
    from lsn_explorer.core.neurons.methods import TITLES

    layers = " ".join(f"L{i:<3}" for i in range(neuron_set.n_layers))
    title = TITLES.get(neuron_set.method, neuron_set.method)
    header = f"{name} ({title})" if name else title
    print(f"{header}: {neuron_set.unique_count()} distinct neurons "
          f"({neuron_set.n_layers} layers × {neuron_set.d_ff})")
    print(f"{'lang':<5} {'count':>6}  per layer: {layers}")
    for lang in neuron_set.languages:
        per_layer = " ".join(f"{n:<4}" for n in neuron_set.per_layer(lang))
        print(f"{lang:<5} {len(neuron_set.neurons[lang]):>6}             {per_layer}")


def _sentence_progress() -> Callable[[str, int, int], None]:
    """Progress of the model passes of type1 / type2 on stderr: a live line on a terminal, one
    line per finished language otherwise (logs stay readable)."""
    live = sys.stderr.isatty()
    started = {"at": time.monotonic()}

    def report(lang: str, done: int, total: int) -> None:
        rate = done / max(time.monotonic() - started["at"], 1e-9)
        line = f"{lang:>4}: {done:>5}/{total} sentences  {rate:6.0f}/s"
        if live:
            print("\r" + line, end="\n" if done >= total else "", file=sys.stderr, flush=True)
        elif done >= total:
            print(line, file=sys.stderr, flush=True)
        if done >= total:
            started["at"] = time.monotonic()

    return report
