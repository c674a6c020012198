"""The `lsn-explorer` command line: argument parsing and printing, no science.

Each sub-command parses its arguments, calls one `core` function and prints the result. Heavy
libraries (torch, transformers, nnsight) are imported inside the commands so `--help` is instant.
An `LsnError` becomes `error: ...` / `hint: ...` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from lsn_explorer import __version__
from lsn_explorer.errors import LsnError

DEMO_LANGS = ("en", "zh", "hi")  # the three languages `demo run` continues
# Tokens per language when `stats` runs on the demo model without --tokens: enough for stable
# LAPE sets on the demo corpus (the science tests use 4,000), and the README workflow stays
# within minutes on 2 CPU cores. Real models use the whole corpus unless --tokens says otherwise.
DEMO_TOKENS = 20_000


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="Hugging Face id or local checkpoint folder (default: the bundled demo model)")
    parser.add_argument("--4bit", dest="four_bit", action="store_true",
                        help="load in 4-bit NF4 (bitsandbytes, double quantisation, bf16 compute)")
    parser.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16 (default auto)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")


def _load(args: argparse.Namespace) -> Any:
    from lsn_explorer.core.model.loading import load_model

    return load_model(args.model, dtype=args.dtype, four_bit=args.four_bit, device=args.device)


def cmd_model_info(args: argparse.Namespace) -> int:
    handle = _load(args)
    info = handle.describe()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    arch = handle.arch
    print(f"{info['source']}: {info['family']} ({info['model_type']}), {info['n_layers']} layers, "
          f"d_ff {info['d_ff']}, hidden {info['hidden_size']}, vocab {info['vocab_size']}")
    quant = f", {info['quantization']} 4-bit" if info["quantization"] else ""
    print(f"weights: {info['dtype']}{quant} on {info['device']}")
    if info["head"] == "classifier":
        print(f"head: sequence classifier, labels {', '.join(info['labels'])}")
    path = f"{arch.layers}[i].{arch.mlp}"
    gate = f"{path}.{arch.gate}.output" + ("[..., :d_ff]" if arch.fused_gate_up else "")
    print(f"site g (gate pre-activation): {gate}")
    print(f"site s (activation output):   {path}.{arch.act}.output")
    if arch.gated:
        print(f"site a (down-projection in):  {path}.{arch.down}.input")
    else:
        print("site a: not separate (MLP not gated, a = s)")
    return 0


def cmd_demo_build(args: argparse.Namespace) -> int:
    from lsn_explorer.demo.build import build_demo, evaluate_demo, write_model_card
    from lsn_explorer.core.model.loading import DEMO_MODEL_DIR, load_model

    from lsn_explorer.paths import output_dir

    out = output_dir(args.out) if args.out else DEMO_MODEL_DIR
    started = time.monotonic()

    def progress(message: str, fraction: float) -> None:
        elapsed = time.monotonic() - started
        print(f"\r[{fraction:6.1%}] {elapsed:6.0f}s  {message:<40}", end="", file=sys.stderr, flush=True)

    kwargs = {"corpus_dir": args.corpus} if args.corpus else {}
    manifest = build_demo(out, minutes=args.minutes, progress=progress, **kwargs)
    print(file=sys.stderr)
    status = "complete" if manifest["complete"] else f"stopped early at step {manifest['steps_done']}"
    print(f"demo model written to {out} ({status}, {manifest['parameters']:,} parameters, "
          f"{manifest['train_seconds']:.0f}s, final loss {manifest['final_loss_mean_last_20']:.3f})")
    if not manifest["complete"]:
        print("note: the time cap cut training short, so this model differs from the committed one")
    print("measuring held-out perplexity ...", file=sys.stderr)
    checks = evaluate_demo(load_model(out, device="cpu"), **kwargs)
    print(f"model card written to {write_model_card(out, manifest, checks)}")
    return 0


def cmd_demo_eval(args: argparse.Namespace) -> int:
    from lsn_explorer.demo.build import evaluate_demo
    from lsn_explorer.core.data.languages import parse_languages

    handle = _load(args)
    langs = [l.code for l in parse_languages(args.langs)] if args.langs else None
    kwargs = {"corpus_dir": args.corpus} if args.corpus else {}
    checks = evaluate_demo(handle, langs, **kwargs)
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=1))
        return 0
    print(f"{'lang':<5} {'lines':>5} {'tokens':>7} {'held-out PPL':>13} {'bits/char':>10} {'unigram':>8} {'in-script':>10}")
    for c in checks:
        print(f"{c.lang:<5} {c.lines:>5} {c.tokens:>7} {c.perplexity:>13.1f} {c.bits_per_char:>10.2f} "
              f"{c.unigram_bits_per_char:>8.2f} {c.in_script:>5}/{c.prompts}")
    return 0


def cmd_demo_run(args: argparse.Namespace) -> int:
    from lsn_explorer.core.data.corpora import load_parallel
    from lsn_explorer.demo.build import prompt_from
    from lsn_explorer.core.generate import continue_text
    from lsn_explorer.core.data.languages import get_language

    print("loading model ...", flush=True)
    handle = _load(args)
    info = handle.describe()
    print(f"{info['source']}: {info['family']}, {info['n_layers']} layers × {info['d_ff']} neurons, "
          f"{info['dtype']}{' NF4' if info['quantization'] else ''} on {info['device']}\n")
    heldout = load_parallel(DEMO_LANGS).split("heldout")
    for lang in DEMO_LANGS:
        prompt = prompt_from(heldout.lines[lang][args.line])
        continuation = continue_text(handle, prompt, max_new_tokens=args.max_new_tokens)
        print(f"[{lang}] {get_language(lang).name}")
        print(f"  prompt:       {prompt}")
        print(f"  continuation: {continuation.strip()}\n")
    return 0


# -- sessions, statistics, identification ---------------------------------------------------------
def _session(args: argparse.Namespace, *, create: bool = True) -> Any:
    from lsn_explorer.session.store import Session

    return Session.open(args.session, args.sessions_dir, create=create)


def _corpora(langs: list[str], sources: list[str] | None, sessions_dir: str | None = None) -> dict[str, Path]:
    """lang → text file, from --corpus (one folder, or files named by language, or lang=FILE)."""
    from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR, corpus_file, language_of_file
    from lsn_explorer.core.data.languages import get_language
    from lsn_explorer.errors import CorpusError

    if not sources:
        return {lang: corpus_file(lang, DEMO_CORPUS_DIR) for lang in langs}
    if sources == ["hf:wikipedia"]:
        from lsn_explorer.core.data.corpora import wikipedia_file
        from lsn_explorer.session.store import default_root

        root = Path(sessions_dir) if sessions_dir else default_root()
        return {lang: wikipedia_file(lang, root / "corpora") for lang in langs}
    if len(sources) == 1 and Path(sources[0]).is_dir():
        return {lang: corpus_file(lang, sources[0]) for lang in langs}
    files: dict[str, Path] = {}
    for source in sources:
        code, _, path = source.rpartition("=") if "=" in source else ("", "", source)
        lang = get_language(code).code if code else language_of_file(path).code
        if not Path(path).is_file():
            raise CorpusError(f"corpus file {path} does not exist", "check the path")
        files[lang] = Path(path)
    missing = [lang for lang in langs if lang not in files]
    if missing:
        raise CorpusError(f"no corpus file given for {', '.join(missing)}",
                          "add FILE arguments named by language (zh.txt, hin_Deva.devtest) or lang=FILE")
    return {lang: files[lang] for lang in langs}


def _token_cap(text: str) -> int | str:
    """`--tokens N` or `--tokens all`; range checks happen in StatsSettings (one message)."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or `all`") from None


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise LsnError(f"bad --shard {text!r}", "write i/n with 0 ≤ i < n, e.g. --shard 0/4")
    return index, count


def cmd_stats(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from lsn_explorer.core.data.corpora import read_lines
    from lsn_explorer.core.data.languages import parse_languages
    from lsn_explorer.core.stats.runs import StatsSettings, compute_stats, merge_shards

    if args.action == "merge":
        with _session(args, create=False) as session:
            merged = merge_shards(session, [l.code for l in parse_languages(args.langs)] if args.langs else None)
        for row in merged:
            print(f"{row['lang']}: merged {row['tokens']:,} tokens (record {row['record']})")
        return 0
    if not args.langs:
        raise LsnError("no languages given", "pass --langs, e.g. --langs en,zh,hi")
    langs = [l.code for l in parse_languages(args.langs)]
    corpora = _corpora(langs, args.corpus, args.sessions_dir)
    for path in corpora.values():
        read_lines(path)  # every file readable and non-empty before anything is computed or written
    shard = _shard(args.shard)
    max_tokens = None if args.tokens == "all" else args.tokens
    if args.tokens is None and args.model is None:
        max_tokens = DEMO_TOKENS
        print(f"note: demo model: statistics over the first {DEMO_TOKENS:,} tokens per language "
              "(--tokens N or --tokens all to change)", file=sys.stderr)
    settings = StatsSettings(site=args.site, mode=args.mode, window=args.window, batch_size=args.batch_size,
                             max_tokens=max_tokens, bins=args.bins)  # checked here, before the model loads
    handle = _load(args)
    settings = settings.resolved(handle)
    columns = (TextColumn("{task.description:>4}"), BarColumn(), TextColumn("{task.completed:>9,.0f} tok"),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with _session(args) as session, Progress(*columns, disable=args.json, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(lang: str, done: int, total: int) -> None:
            if lang not in tasks:
                tasks[lang] = bar.add_task(lang, total=total, rate="")
            task = tasks[lang]
            speed = bar.tasks[task].speed
            bar.update(task, completed=done, total=total, rate=f"{speed:,.0f} tok/s" if speed else "")

        summaries = compute_stats(session, handle, corpora, settings, shard=shard, progress=progress,
                                  warn=lambda m: print(f"warning: {m}", file=sys.stderr),
                                  allow_mixed=args.allow_mixed)
    if args.json:
        print(json.dumps(summaries))
    else:
        for row in summaries:
            state = "already in the session" if row["skipped"] else "collected"
            print(f"{row['lang']}: {row['tokens']:,} tokens {state} (record {row['record']})")
    return 0


def _print_neuron_set(neuron_set: Any, name: str | None = None) -> None:
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


def cmd_identify(args: argparse.Namespace) -> int:
    from lsn_explorer.core.neurons.specificity import jaccard_matrix, language_sets
    from lsn_explorer.core.neurons.runs import identify, load_neuron_set, specificity
    from lsn_explorer.core.neurons.lape import ACTPROB90P_NOTE
    from lsn_explorer.core.data.languages import parse_languages
    from lsn_explorer.core.neurons.methods import NEEDS, check_method
    from lsn_explorer.paths import input_file, output_file

    langs = [l.code for l in parse_languages(args.langs)] if args.langs else None
    method = check_method(args.method)
    params = _method_params(args, method) if args.action == "run" else {}
    creates = args.action == "import" or (args.action == "run" and NEEDS[method] == "model")
    with _session(args, create=creates) as session:
        if args.action == "compare":
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
        if args.action in ("show", "export"):
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
        if args.action == "import":
            from lsn_explorer.core.model.loading import load_model
            from lsn_explorer.core.neurons.neuron_set import load_neuron_file

            if not args.file:
                raise LsnError("no file to import", "pass --file FILE.json or FILE.pth")
            input_file(args.file, "neuron file")
            handle = load_model(args.model, four_bit=args.four_bit, dtype=args.dtype, device=args.device)
            neuron_set = load_neuron_file(args.file, handle.n_layers, handle.d_ff, langs)
            session.add("neuron_set", args.name or Path(args.file).stem, {"set": neuron_set.to_json()},
                        {"method": "import", "file": args.file})
            _print_neuron_set(neuron_set, args.name or Path(args.file).stem)
            return 0
        name = args.name or method
        _check_replace(session, name, args.replace)
        if method == "actprob90p":
            print(f"note: {ACTPROB90P_NOTE}", file=sys.stderr)
        handle = _load(args) if NEEDS[method] == "model" else None
        neuron_set, record = identify(session, method, langs=langs, params=params, handle=handle,
                                      corpus_dir=args.corpus, reference=args.reference, name=name,
                                      progress=_sentence_progress())
    _print_neuron_set(neuron_set, name)
    print(f"stored as neuron set {name!r} (record {record})")
    return 0


def _check_replace(session: Any, name: str, replace: bool) -> None:
    """A set that a switched-on row of the session's workbench uses is never replaced silently."""
    from lsn_explorer.workbench.bench import STATE_KIND, WorkbenchState, free_set_name, rows_using

    latest = session.latest(STATE_KIND)
    using = rows_using(WorkbenchState.from_json(latest.payload).rows, name) if latest else []
    if using and not replace:
        taken = [r.name for r in session.records("neuron_set")]
        raise LsnError(f"neuron set {name!r} is used by the switched-on row {', '.join(using)} in the app",
                       f"store it under a new name (--name {free_set_name(name, taken)}), or pass --replace")


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


# -- interventions: generate, ppl, score ------------------------------------------------------
def _session_model(args: argparse.Namespace, session: Any) -> Any:
    """--model when given, else the model the session's records were made with (else the demo)."""
    from lsn_explorer.core.model.loading import load_model

    if args.model is None and session is not None:
        for record in reversed(session.records()):
            model = (record.provenance or {}).get("model")
            if model and model.get("source"):
                four_bit = args.four_bit or model.get("quantization") == "nf4"
                return load_model(model["source"], dtype=args.dtype, four_bit=four_bit, device=args.device)
    return _load(args)


def _check_sources(args: argparse.Namespace, session: Any) -> None:
    """What --intervene names must exist before the model loads (a typo fails in a second)."""
    from lsn_explorer.core.interventions.resolve import check_sources
    from lsn_explorer.core.interventions.spec import parse_intervention

    check_sources([parse_intervention(spec) for spec in args.intervene or []], session)


def _plans(args: argparse.Namespace, handle: Any, session: Any) -> tuple[list[Any], Any]:
    from lsn_explorer.core.interventions.spec import parse_intervention
    from lsn_explorer.core.interventions.resolve import resolve

    interventions = [parse_intervention(spec) for spec in args.intervene or []]
    return interventions, resolve(interventions, handle, session) if interventions else None


def cmd_generate(args: argparse.Namespace) -> int:
    from lsn_explorer.core.generate import TokenEvent, generate, record_generation
    from lsn_explorer.core.interventions.spec import parse_intervention

    for spec in args.intervene or []:
        parse_intervention(spec)  # syntax errors before the model loads
    if args.compare and not args.intervene:
        raise LsnError("--compare needs an intervention to compare against", "add --intervene SPEC")
    session = _session(args) if args.session else None  # generation history goes there
    try:
        _check_sources(args, session)
        handle = _session_model(args, session)
        interventions, plan = _plans(args, handle, session)
        rows = [None, plan] if args.compare else [plan]
        labels = ["baseline", "intervened"] if args.compare else None
        streaming = not args.json and not args.compare and sys.stdout.isatty()

        def on_token(event: TokenEvent) -> None:
            if streaming:
                print(event.text, end="", flush=True)

        if streaming:
            print(args.prompt, end="", flush=True)
        result = generate(handle, args.prompt, rows, labels=labels, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, seed=args.seed, on_token=on_token)
        if session is not None:
            record_generation(session, handle, result)
    finally:
        if session is not None:
            session.close()
    if args.json:
        print(json.dumps({"prompt": result.prompt, "record": result.record,
                          "rows": [row.__dict__ for row in result.rows]}, ensure_ascii=False))
        return 0
    if streaming:
        print()
    else:
        for row in result.rows:
            mix = ", ".join(f"{k} {v:.0%}" for k, v in row.scripts.items()) or "no letters"
            title = row.label if not row.specs else f"{row.label}: {' '.join(row.specs)}"
            print(f"[{title}]  (ppl {row.perplexity:.1f}; {mix})")
            print(f"{result.prompt}{row.text}\n")
    if result.record is not None:
        print(f"recorded in session {args.session!r} (record {result.record})", file=sys.stderr)
    return 0


def cmd_ppl(args: argparse.Namespace) -> int:
    from lsn_explorer.core.interventions.resolve import check_sources
    from lsn_explorer.core.interventions.spec import parse_intervention
    from lsn_explorer.core.data.languages import parse_languages
    from lsn_explorer.core.tasks.perplexity import heldout_lines, line_perplexity, ppl_change, ppxc
    from lsn_explorer.session.provenance import provenance

    langs = [l.code for l in parse_languages(args.langs)] if args.langs else None
    if not langs:
        raise LsnError("no languages given", "pass --langs, e.g. --langs zh,hi,en")
    lines = {lang: heldout_lines(lang, args.corpus) for lang in langs}  # readable before loading
    if args.matrix:
        template = parse_intervention(f"{args.set}:{langs[0]}={args.value}")
    else:
        for spec in args.intervene or []:
            parse_intervention(spec)
    with _session(args) as session:
        if args.matrix:  # the set must exist before minutes of perplexity work start
            check_sources([parse_intervention(f"{args.set}=zero")], session)
        _check_sources(args, session)
        handle = _session_model(args, session)
        if args.matrix:
            started = time.monotonic()

            def progress(done: int, total: int) -> None:
                elapsed = time.monotonic() - started
                eta = elapsed / done * (total - done) if done else 0.0
                end = "\n" if done >= total or not sys.stderr.isatty() else ""
                print(f"\rPPXC: {done}/{total} cells, {elapsed:.0f}s, about {eta:.0f}s left   ", end=end,
                      file=sys.stderr, flush=True)

            matrix = ppxc(handle, session, langs, template, args.corpus, progress=progress)
            payload = {"set": args.set, "value": args.value, "rows": matrix.rows, "cols": matrix.cols,
                       "base": matrix.base, "ppl": matrix.ppl, "skipped": matrix.skipped}
            record = session.add("ppxc", args.set, payload,
                                 provenance(handle=handle, method="ppxc", params={"set": args.set, "value": args.value}))
            if args.json:
                print(json.dumps(payload | {"record": record.id}))
                return 0
            _print_ppxc(matrix, args.set, args.value)
            return 0
        _, plan = _plans(args, handle, session)
        rows = []
        for lang in langs:
            if plan is None:
                base = line_perplexity(handle, lines[lang])
                rows.append({"lang": lang, "tokens": base.n_tokens, "ppl": base.value, "intervened": base.value,
                             "change": 0.0, "relative": 0.0})
                continue
            change = ppl_change(handle, lines[lang], plan, lang)
            rows.append({"lang": lang, "tokens": change.base.n_tokens, "ppl": change.base.value,
                         "intervened": change.intervened.value, "change": change.delta, "relative": change.relative})
        record = session.add("ppl", ",".join(langs), {"rows": rows, "interventions": args.intervene or []},
                             provenance(handle=handle, method="ppl", params={"interventions": args.intervene or []}))
    if args.json:
        print(json.dumps({"rows": rows, "record": record.id}))
        return 0
    print(f"{'lang':<5} {'tokens':>7} {'PPL':>9}" + (f" {'intervened':>11} {'change':>9} {'rel':>7}" if plan else ""))
    for r in rows:
        extra = f" {r['intervened']:>11.2f} {r['change']:>+9.2f} {r['relative']:>+7.1%}" if plan else ""
        print(f"{r['lang']:<5} {r['tokens']:>7} {r['ppl']:>9.2f}{extra}")
    return 0


def _print_ppxc(matrix: Any, set_name: str, value: str) -> None:
    """A rich table on a terminal; tab-separated values, complete, when piped or redirected
    (rich would cut cells to an 80-column console there)."""
    from rich.console import Console
    from rich.table import Table

    cell = {(i, j): f"{matrix.delta(i, j):+.1f} ({matrix.relative(i, j):+.1%})" for i in matrix.rows for j in matrix.cols}
    if not sys.stdout.isatty():
        print(f"# PPXC: rows = {set_name} neurons of i set to {value}; columns = PPL of j; "
              "cells = change (relative change); ✓ = diagonal is the row's largest relative change")
        print("\t".join(["i \\ j", *matrix.cols]))
        for i in matrix.rows:
            print("\t".join([i + (" ✓" if matrix.diagonal_dominant(i) else ""), *(cell[i, j] for j in matrix.cols)]))
        print("\t".join(["base PPL", *(f"{matrix.base[j]:.1f}" for j in matrix.cols)]))
    else:
        table = Table(title=f"PPXC: rows = {set_name} neurons of i set to {value}, columns = PPL of j "
                            "(change, relative change; diagonal in bold)")
        table.add_column("i \\ j", no_wrap=True)
        for j in matrix.cols:
            table.add_column(j, justify="right", no_wrap=True)
        for i in matrix.rows:
            cells = [f"[bold reverse]{cell[i, j]}[/]" if i == j else cell[i, j] for j in matrix.cols]
            table.add_row(i + (" ✓" if matrix.diagonal_dominant(i) else ""), *cells)
        table.add_row("base PPL", *(f"{matrix.base[j]:.1f}" for j in matrix.cols), style="dim")
        Console().print(table)
        print("✓ = the diagonal entry is the row's largest relative change")
    for i, why in matrix.skipped.items():
        print(f"row {i} skipped: {why}")


def cmd_score(args: argparse.Namespace) -> int:
    from lsn_explorer.core.interventions.spec import parse_intervention
    from lsn_explorer.core.data.languages import get_language
    from lsn_explorer.core.tasks.scoring import load_examples, pick, record_score, score_sample, score_text

    for spec in args.intervene or []:
        parse_intervention(spec)
    if args.file:
        from lsn_explorer.paths import input_file

        path = input_file(args.file, "text file")
        try:
            text = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise LsnError(f"text file {path} is not UTF-8 text", "convert it to UTF-8") from None
        if not text:
            raise LsnError(f"text file {path} is empty", "give a file with some text")
        example = None
    else:
        if not args.task or not args.lang:
            raise LsnError("nothing to score", "pass --task xnli|xquad|mkqa --lang L --sample K, or --file TEXT")
        lang = get_language(args.lang).code
        example = pick(load_examples(args.task, lang, args.data_dir, args.split), args.sample, args.task, lang)
    with _session(args) as session:
        _check_sources(args, session)
        handle = _session_model(args, session)
        _, plan = _plans(args, handle, session)
        plans = [None, plan] if plan else [None]
        labels = ["baseline", "intervened"][: len(plans)]
        if example is None:
            score = score_text(handle, text, plans, labels)
        else:
            score = score_sample(handle, args.task, lang, example, plans, sample=args.sample, labels=labels)
        record_score(session, handle, score, args.intervene or [])
    if args.json:
        print(json.dumps({"shown": score.shown, "rows": [r.__dict__ for r in score.rows], "record": score.record},
                         ensure_ascii=False))
        return 0
    for key, value in score.shown.items():
        print(f"{key}: {value}")
    for row in score.rows:
        parts = [f"prediction {row.prediction!r}"] if row.prediction else []
        if row.probabilities:
            parts.append("p(entail, neutral, contra) = " + ", ".join(f"{p:.2f}" for p in row.probabilities))
            parts.append("correct" if row.correct else "wrong")
        if row.f1 is not None:
            parts.append(f"EM {row.exact_match:.2f} F1 {row.f1:.2f}")
        if row.token_f1 is not None:
            parts.append(f"token-id F1 {row.token_f1:.2f}")
        if row.perplexity is not None:
            parts.append(f"PPL {row.perplexity:.2f}")
        print(f"[{row.label}] " + "; ".join(parts))
    return 0


def cmd_session(args: argparse.Namespace) -> int:
    from lsn_explorer.paths import output_dir
    from lsn_explorer.session.export import export_session
    from lsn_explorer.session.store import list_sessions

    if args.action == "list":
        rows = list_sessions(args.sessions_dir)
        if not rows:
            print("no sessions yet")
        for row in rows:
            detail = row.get("error") or ", ".join(f"{n} {k}" for k, n in row["records"].items()) or "empty"
            print(f"{row['name']:<20} {detail}  {row.get('last_change', '')}")
        return 0
    if not args.name:
        raise LsnError("no session name", "pass the session's name, e.g. `lsn-explorer session show demo`")
    args.session = args.name
    with _session(args, create=False) as session:
        if args.action == "export":
            if not args.out:
                raise LsnError("no output folder", "pass --out DIR")
            written = export_session(session, output_dir(args.out))
            print(f"exported {len(written)} files to {args.out}")
            return 0
        for record in session.records():
            summary = {k: v for k, v in record.payload.items() if k not in ("set", "key")}
            print(f"#{record.id:<4} {record.created}  {record.kind:<12} {record.name:<10} {json.dumps(summary)[:90]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsn-explorer",
        description="Find and intervene on language-specific and transfer neurons in LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"lsn-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    model = sub.add_parser("model", help="inspect a model").add_subparsers(dest="action", metavar="ACTION")
    info = model.add_parser("info", help="architecture, sizes and neuron sites of a model")
    _add_model_args(info)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_model_info)

    demo = sub.add_parser("demo", help="the bundled demo model").add_subparsers(dest="action", metavar="ACTION")
    run = demo.add_parser("run", help="load a model and continue held-out prompts in en, zh, hi")
    _add_model_args(run)
    run.add_argument("--line", type=int, default=0, help="which held-out line to prompt with")
    run.add_argument("--max-new-tokens", type=int, default=24)
    run.set_defaults(func=cmd_demo_run)
    build = demo.add_parser("build", help="rebuild the demo model from the demo corpus (seeded)")
    build.add_argument("--out", default=None, help="output folder (default: assets/demo-model)")
    build.add_argument("--minutes", type=float, default=None, help="wall-clock cap; stops training early")
    build.add_argument("--corpus", default=None, help="corpus folder with <lang>.txt files")
    build.set_defaults(func=cmd_demo_build)
    ev = demo.add_parser("eval", help="held-out perplexity and script consistency per language")
    _add_model_args(ev)
    ev.add_argument("--langs", default=None, help="comma-separated codes (default: every corpus language)")
    ev.add_argument("--corpus", default=None, help="corpus folder with <lang>.txt files")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.set_defaults(func=cmd_demo_eval)

    stats = sub.add_parser("stats", help="activation statistics per language into a session")
    stats.add_argument("action", nargs="?", choices=("run", "merge"), default="run",
                       help="run (default) or merge shard results")
    _add_model_args(stats)
    _add_session_args(stats)
    stats.add_argument("--langs", help="comma-separated language codes, e.g. en,zh,hi")
    stats.add_argument("--corpus", nargs="+",
                       help="a folder of <lang>.txt / FLORES / Tatoeba files, files (lang=FILE), or hf:wikipedia")
    stats.add_argument("--site", default="s", choices=("g", "s", "a"), help="which activation (default s)")
    stats.add_argument("--mode", default="consistent", choices=("consistent", "faithful"))
    stats.add_argument("--window", type=int, default=None, help="tokens per window (default min(512, context))")
    stats.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    stats.add_argument("--tokens", type=_token_cap, default=None,
                       help=f"cap on tokens per language, or `all` (default: all; {DEMO_TOKENS:,} on the demo model)")
    stats.add_argument("--bins", type=int, default=1024, help="histogram bins per neuron (percentile resolution)")
    stats.add_argument("--shard", default=None, help="i/n: take every n-th batch starting at i")
    stats.add_argument("--allow-mixed", action="store_true",
                       help="store statistics of another model/precision beside those already in the session")
    stats.add_argument("--json", action="store_true", help="print a JSON summary")
    stats.set_defaults(func=cmd_stats)

    ident = sub.add_parser("identify", help="find language-specific or transfer neurons")
    ident.add_argument("action", nargs="?", choices=("run", "show", "compare", "export", "import"), default="run")
    _add_model_args(ident)
    _add_session_args(ident)
    ident.add_argument("--method", default="lape", help="lape | actprob90p | type1 | type2 | random")
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

    gen = sub.add_parser("generate", help="continue a prompt, optionally side by side with interventions")
    _add_model_args(gen)
    _add_session_args(gen, default=None)
    gen.add_argument("--prompt", required=True, help="text to continue")
    _add_intervene_arg(gen)
    gen.add_argument("--compare", action="store_true", help="baseline and intervened from one batched run")
    gen.add_argument("--max-new-tokens", type=int, default=32)
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed, shared by both rows")
    gen.add_argument("--json", action="store_true", help="machine-readable output")
    gen.set_defaults(func=cmd_generate)

    ppl = sub.add_parser("ppl", help="held-out perplexity with and without interventions; PPXC matrix")
    _add_model_args(ppl)
    _add_session_args(ppl)
    ppl.add_argument("--langs", help="comma-separated language codes")
    _add_intervene_arg(ppl)
    ppl.add_argument("--matrix", action="store_true", help="PPXC(i, j): deactivate i's neurons, measure j")
    ppl.add_argument("--set", default="lape", help="matrix: the stored neuron set (default lape)")
    ppl.add_argument("--value", default="zero", help="matrix: value written (default zero)")
    ppl.add_argument("--corpus", default=None, help="folder with <lang>.txt files (default: demo corpus)")
    ppl.add_argument("--json", action="store_true", help="machine-readable output")
    ppl.set_defaults(func=cmd_ppl)

    score = sub.add_parser("score", help="score one task sample (or a text) with and without interventions")
    _add_model_args(score)
    _add_session_args(score)
    score.add_argument("--task", choices=("xnli", "xquad", "mkqa"))
    score.add_argument("--lang", help="language code")
    score.add_argument("--sample", type=int, default=0, help="which sample (0-based)")
    score.add_argument("--file", help="score a text file's perplexity instead of a task sample")
    score.add_argument("--data-dir", default=None,
                       help="benchmark folder (default: the demo samples), or hf:xnli to read XNLI from the "
                            "Hugging Face hub (needs `pip install datasets`; any hf:DATASET with XNLI's fields)")
    score.add_argument("--split", default="test",
                       help="XNLI split: test | validation in a benchmark folder; train too with hf:")
    _add_intervene_arg(score)
    score.add_argument("--json", action="store_true", help="machine-readable output")
    score.set_defaults(func=cmd_score)

    sess = sub.add_parser("session", help="list, show and export sessions")
    sess.add_argument("action", choices=("list", "show", "export"))
    sess.add_argument("name", nargs="?", help="session name (show, export)")
    sess.add_argument("--out", help="export: output folder")
    sess.add_argument("--sessions-dir", default=None, help="session store (default $LSN_SESSIONS_DIR or ./sessions)")
    sess.set_defaults(func=cmd_session)

    tui = sub.add_parser("tui", help="open the terminal workbench (also: lsn-explorer with no arguments)")
    tui.add_argument("--model", default=None, help="Hugging Face id or local checkpoint folder (default: demo)")
    tui.add_argument("--4bit", dest="four_bit", action="store_true", help="load in 4-bit NF4 (bitsandbytes)")
    tui.add_argument("--session", default=None, help="open this session (default: pick one at start)")
    tui.add_argument("--sessions-dir", default=None, help="session store (default $LSN_SESSIONS_DIR or ./sessions)")
    tui.add_argument("--corpus", default=None, help="folder with <lang>.txt files (default: the demo corpus)")
    tui.set_defaults(func=cmd_tui)
    return parser


def cmd_tui(args: argparse.Namespace) -> int:
    from lsn_explorer.tui.app import create_app

    create_app(model=args.model, four_bit=args.four_bit, session=args.session, root=args.sessions_dir,
               corpus_dir=args.corpus).run()
    return 0


def _add_session_args(parser: argparse.ArgumentParser, default: str | None = "default") -> None:
    parser.add_argument("--session", default=default,
                        help=f"session name (default: {default or 'none, nothing is recorded'})")
    parser.add_argument("--sessions-dir", default=None, help="session store (default $LSN_SESSIONS_DIR or ./sessions)")


def _add_intervene_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--intervene", action="append", metavar="SPEC",
                        help="SOURCE[:LANG]=VALUE[@POSITIONS][/SITE][/faithful], e.g. lape:zh=zero "
                             "(repeat for several; see README)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # No arguments at all opens the app, the way a newcomer starts (`make run` does this too).
    args = parser.parse_args(["tui"] if argv is None and len(sys.argv) == 1 else argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return func(args)
    except LsnError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Paths are checked before work starts; this catches what the file system does later
        # (a full disk, a folder removed mid-run) with the same one-line error and hint.
        from lsn_explorer.paths import describe_os_error

        error = describe_os_error(exc)
        print(f"error: {error.message}", file=sys.stderr)
        print(f"hint: {error.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
