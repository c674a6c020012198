"""Identification runs against a session: the method registry, storing and loading NeuronSets.

`identify(session, method, ...)` reads what the method needs from the session (statistics for
lape / actprob90p, a stored set for random) or from a parallel corpus (type1 / type2), runs it, and
stores the resulting `NeuronSet` as a "neuron_set" record (the set is small: kept as JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from lsn_explorer.core.data.corpora import corpus_file, read_lines
from lsn_explorer.core.neurons.baseline import random_baseline
from lsn_explorer.core.neurons.lape import actprob90p, lape
from lsn_explorer.core.neurons.methods import MethodSpec
from lsn_explorer.core.neurons.neuron_set import NeuronSet
from lsn_explorer.core.neurons.specificity import eta_squared, specificity_summary
from lsn_explorer.core.progress import Cancel, Progress, stop_if_cancelled
from lsn_explorer.core.stats.runs import ActivationStats, StatsMismatch, StatsMissing, identity_differences, load_stats
from lsn_explorer.errors import CorpusError, LsnError
from lsn_explorer.session.provenance import file_sha256, provenance

if TYPE_CHECKING:

    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Session

def session_stats(session: Session, langs: Sequence[str], site: str | None = None,
                  mode: str | None = None) -> list[ActivationStats]:
    """Statistics of every language (the newest matching records), all of one model, precision,
    site and mode; `StatsMismatch` names what differs otherwise."""
    found = [load_stats(session, lang, site=site, mode=mode) for lang in langs]
    first = found[0].identity or {}
    for stats in found[1:]:
        differences = identity_differences(first, stats.identity or {})
        if differences:
            raise StatsMismatch(f"the statistics of {found[0].lang} and {stats.lang} differ: {'; '.join(differences)}",
                                "recompute them with one model setting, or choose one with --site/--mode")
    return found


def stats_languages(session: Session) -> list[str]:
    """Languages with finalized statistics in the session, in first-computed order."""
    return list(dict.fromkeys(r.name for r in session.records("stats")))


# Long on purpose: one branch per kind of input a method needs (statistics, model, reference), side by side.
def identify(
    session: Session,
    method: str,
    *,
    langs: Sequence[str] | None = None,
    params: dict[str, Any] | None = None,
    handle: ModelHandle | None = None,
    corpus_dir: str | Path | None = None,
    reference: str | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> tuple[NeuronSet, int]:
    """Run `method` and store its NeuronSet in the session; returns (set, record id).

    `progress(lang, done, total)` reports the model passes of type1 / type2 (the other methods
    take well under a second). A set `cancel` raises `Cancelled` and stores nothing.
    """
    spec = MethodSpec(method, dict(params or {}))  # validated before any work
    method, params = spec.method, dict(spec.params)
    stop_if_cancelled(cancel, method)
    corpus_spec: dict[str, Any] | None = None
    if method in ("lape", "actprob90p"):
        langs = list(langs or stats_languages(session))
        if not langs:
            raise StatsMissing(f"session {session.name!r} has no activation statistics",
                               f"run `lsn-explorer stats --session {session.name} --langs ...` first")
        if method == "lape" and len(langs) < 2:
            raise LsnError("LAPE compares languages: it needs statistics for at least two", "add languages with --langs")
        stats = session_stats(session, langs, params.pop("site", None), params.pop("mode", None))
        if method == "lape":
            result = lape(torch.stack([s.values["prob"] for s in stats]), langs, **params)
        else:
            result = actprob90p(torch.stack([s.values["act90"] for s in stats]), langs, **params)
        result.params |= {"site": stats[0].site, "stats_mode": stats[0].mode,
                          "stats_records": {s.lang: s.record for s in stats}}
        corpus_spec = {s.lang: s.corpus for s in stats}
    elif method in ("type1", "type2"):
        from lsn_explorer.core.data.corpora import DEMO_CORPUS_DIR
        from lsn_explorer.core.neurons.transfer import TransferType, transfer_neurons

        if handle is None:
            raise LsnError(f"{method} needs the model", "pass --model")
        folder = Path(corpus_dir) if corpus_dir else DEMO_CORPUS_DIR
        targets = [lang for lang in (langs or []) if lang != "en"]
        if not targets:
            raise LsnError(f"{method} needs at least one language other than English", "pass --langs, e.g. ja,zh")
        pairs = {lang: parallel_pair(lang, folder) for lang in targets}
        corpus_spec = {lang: {"files": [str(p) for p in paths], "sha256": [file_sha256(p) for p in paths]}
                       for lang, paths in ((lang, parallel_paths(lang, folder)) for lang in targets)}
        kind: TransferType = "type1" if method == "type1" else "type2"
        result = transfer_neurons(handle, kind, pairs, progress=progress, cancel=cancel, **params)
    else:
        if reference is None:
            raise LsnError("the random baseline needs a reference set", "pass --reference NAME (a stored neuron set)")
        ref = load_neuron_set(session, reference)
        layers = params.pop("layers", None) or ref.params.get("layers")
        result = random_baseline(ref, layers=layers, **params)
        result.params["reference"] = reference
    stop_if_cancelled(cancel, method)  # the run may have finished just as the user cancelled
    record = session.add("neuron_set", name or method, {"set": result.to_json(), "spec": spec.to_json()},
                         provenance(model=handle.provenance() if handle is not None else None, corpus=corpus_spec,
                                    method=method, params=result.params, seed=result.params.get("seed")))
    return result, record.id


def parallel_paths(lang: str, folder: Path) -> tuple[Path, Path]:
    """English and `lang` files of a parallel corpus (Tatoeba pair files, or <code>.txt / FLORES)."""
    from lsn_explorer.core.data.languages import get_language

    tatoeba = get_language(lang).code_in("tatoeba")
    if tatoeba and (folder / f"tatoeba.{tatoeba}-eng.{tatoeba}").is_file():
        return folder / f"tatoeba.{tatoeba}-eng.eng", folder / f"tatoeba.{tatoeba}-eng.{tatoeba}"
    return corpus_file("en", folder), corpus_file(lang, folder)


def parallel_pair(lang: str, folder: Path) -> tuple[list[str], list[str]]:
    en_path, l2_path = parallel_paths(lang, folder)
    en, l2 = read_lines(en_path), read_lines(l2_path)
    if len(en) != len(l2):
        raise CorpusError(f"parallel files have different line counts ({en_path.name}={len(en)}, "
                          f"{l2_path.name}={len(l2)})", "line i must be the same sentence in both files")
    keep = [i for i in range(len(en)) if en[i] and l2[i]]
    return [en[i] for i in keep], [l2[i] for i in keep]


def load_neuron_set(session: Session, name: str) -> NeuronSet:
    """The newest stored neuron set called `name`."""
    record = session.latest("neuron_set", name)
    if record is None:
        stored = sorted({r.name for r in session.records("neuron_set")})
        raise LsnError(f"session {session.name!r} has no neuron set {name!r}",
                       f"stored sets: {', '.join(stored) or 'none'}; run `lsn-explorer identify` first")
    return NeuronSet.from_json(record.payload["set"], source=f"neuron set {name!r}")


def specificity(session: Session, neuron_set: NeuronSet, langs: Sequence[str] | None = None
                ) -> dict[str, dict[str, float]]:
    """η² / ANOVA summary of each language's neurons against that language vs the rest."""
    langs = list(langs or stats_languages(session))
    stats = session_stats(session, langs, neuron_set.params.get("site"), neuron_set.params.get("stats_mode"))
    counts = [s.tokens for s in stats]
    means = torch.stack([s.values["mean"] for s in stats])
    sqmeans = torch.stack([s.values["sqmean"] for s in stats])
    summary = {}
    for lang in neuron_set.languages:
        if lang not in langs:
            continue
        pairs = neuron_set.neurons[lang]
        eta2, p = eta_squared(counts, means[:, pairs[:, 0], pairs[:, 1]], sqmeans[:, pairs[:, 0], pairs[:, 1]],
                              langs.index(lang))
        summary[lang] = specificity_summary(eta2, p) | {"neurons": len(pairs)}
    return summary


def import_neuron_set(session: Session, path: str | Path, handle: ModelHandle, langs: Sequence[str] | None = None,
                      name: str | None = None) -> tuple[NeuronSet, int]:
    """Read a neuron file made elsewhere and store it in the session; returns (set, record id).

    Args:
        path: a `.json` neuron set or a Tang-style `.pth` file.
        handle: the model the neurons belong to; its layer count and width check the indices.
        langs: the languages of a `.pth` file's entries, in order (JSON files name their own).
        name: the name to store the set under (default: the file name without its suffix).

    Raises:
        NeuronSetError: the file is missing, malformed, or does not fit the model.
    """
    from lsn_explorer.core.neurons.neuron_set import load_neuron_file

    neuron_set = load_neuron_file(path, handle.n_layers, handle.d_ff, langs)
    record = session.add("neuron_set", name or Path(path).stem, {"set": neuron_set.to_json()},
                         {"method": "import", "file": str(path)})
    return neuron_set, record.id
