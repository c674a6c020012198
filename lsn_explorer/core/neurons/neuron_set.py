"""`NeuronSet` and the identification methods that produce one (registry by name).

A NeuronSet maps each language to the (layer, index) pairs selected for it, with the method, its
parameters and per-neuron scores. Methods here work from activation statistics (SCIENCE.md §2–3):
- lape: Tang et al. 2024 (language activation probability entropy);
- actprob90p: Mondal et al. 2025 (fraction of tokens above the language's own P90);
- random: a baseline of the same size and layer range as a given set, excluding it.
Transfer neurons (type1 / type2) are scored from hidden states in `transfer.py`.

Import/export: JSON, and the `.pth` layout of Tang et al. (list over languages → list over layers
→ LongTensor of indices), always read with `weights_only=True`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from lsn_explorer.errors import LsnError

NEURON_SET_VERSION = 1


class NeuronSetError(LsnError):
    """A neuron set that is malformed or does not fit the model."""


@dataclass
class NeuronSet:
    """Selected neurons per language.

    Attributes:
        method: lape | actprob90p | type1 | type2 | random | manual | imported.
        params: the method's parameters (JSON data).
        n_layers, d_ff: the model shape the indices refer to.
        neurons: lang → LongTensor [k, 2] of (layer, index), sorted.
        scores: lang → float tensor [k] (method-specific; empty when not applicable).
    """

    method: str
    params: dict[str, Any]
    n_layers: int
    d_ff: int
    neurons: dict[str, torch.Tensor]
    scores: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for lang, pairs in list(self.neurons.items()):
            pairs = torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)
            self.neurons[lang] = validate_pairs(pairs, self.n_layers, self.d_ff, lang)

    @property
    def languages(self) -> list[str]:
        return list(self.neurons)

    def flat(self, lang: str) -> torch.Tensor:
        """Neurons of `lang` as flat indices layer · d_ff + index."""
        pairs = self.neurons[lang]
        return pairs[:, 0] * self.d_ff + pairs[:, 1]

    def as_set(self, lang: str) -> set[tuple[int, int]]:
        return {(int(l), int(i)) for l, i in self.neurons[lang].tolist()}

    def counts(self) -> dict[str, int]:
        return {lang: len(pairs) for lang, pairs in self.neurons.items()}

    def unique_count(self) -> int:
        return len(set().union(*(self.as_set(lang) for lang in self.neurons))) if self.neurons else 0

    def per_layer(self, lang: str) -> list[int]:
        """How many of `lang`'s neurons lie in each layer."""
        return torch.bincount(self.neurons[lang][:, 0], minlength=self.n_layers).tolist()

    # -- serialisation ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": NEURON_SET_VERSION,
            "method": self.method,
            "params": self.params,
            "n_layers": self.n_layers,
            "d_ff": self.d_ff,
            "neurons": {lang: pairs.tolist() for lang, pairs in self.neurons.items()},
            "scores": {lang: s.tolist() for lang, s in self.scores.items()},
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str = "neuron set") -> "NeuronSet":
        try:
            if data.get("version", 1) > NEURON_SET_VERSION:
                raise NeuronSetError(f"{source} was written by a newer lsn-explorer", "upgrade to read it")
            return cls(
                method=str(data["method"]), params=dict(data.get("params", {})),
                n_layers=int(data["n_layers"]), d_ff=int(data["d_ff"]),
                neurons={lang: torch.tensor(p, dtype=torch.long).reshape(-1, 2) for lang, p in data["neurons"].items()},
                scores={lang: torch.tensor(s, dtype=torch.float32) for lang, s in data.get("scores", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise NeuronSetError(f"{source} is not a neuron-set JSON ({type(exc).__name__}: {exc})",
                                 "expected keys method, n_layers, d_ff, neurons{lang: [[layer, index], ...]}") from exc

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()) + "\n", encoding="utf-8")

    def save_tang_pth(self, path: str | Path, langs: Sequence[str] | None = None) -> list[str]:
        """Write Tang et al.'s layout: list[lang] → list[layer] → LongTensor; returns lang order."""
        langs = list(langs or self.languages)
        nested = [[self.neurons[lang][self.neurons[lang][:, 0] == layer, 1].clone() for layer in range(self.n_layers)]
                  for lang in langs]
        torch.save(nested, path)
        return langs


def validate_pairs(pairs: torch.Tensor, n_layers: int, d_ff: int, lang: str = "", *,
                   typed: bool = False) -> torch.Tensor:
    """Check (layer, index) pairs fit the model; return them sorted and unique.

    `typed`: the pairs were typed by the user (a `3.17,5.200` list), not read from a stored set,
    so the hint names the valid ranges instead of blaming another model."""
    where = f" ({lang})" if lang else ""
    what = "the neuron list" if typed else "neuron set"
    ranges = f"layers 0–{n_layers - 1}, neurons 0–{d_ff - 1}"
    if pairs.numel() and (pairs < 0).any():
        raise NeuronSetError(f"negative layer or neuron index in {what}{where}", "indices start at 0")
    if pairs.numel() and int(pairs[:, 0].max()) >= n_layers:
        raise NeuronSetError(f"layer {int(pairs[:, 0].max())} is beyond the model's {n_layers} layers{where}",
                             f"this model has {ranges}" if typed else "the neuron set was made for a different model")
    if pairs.numel() and int(pairs[:, 1].max()) >= d_ff:
        raise NeuronSetError(f"neuron index {int(pairs[:, 1].max())} is beyond d_ff = {d_ff}{where}",
                             f"this model has {ranges}" if typed
                             else "indices must be below d_ff; the neuron set was made for a different model")
    flat = torch.unique(pairs[:, 0] * d_ff + pairs[:, 1])
    return torch.stack([flat // d_ff, flat % d_ff], -1) if flat.numel() else pairs.new_zeros((0, 2))


def load_neuron_file(path: str | Path, n_layers: int, d_ff: int, langs: Sequence[str] | None = None) -> NeuronSet:
    """Read a neuron set from JSON or a Tang-style `.pth` (languages named by `langs`)."""
    path = Path(path)
    if not path.is_file():
        raise NeuronSetError(f"neuron file {path} does not exist", "check the path")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise NeuronSetError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})", "check the file") from exc
        found = NeuronSet.from_json(data, source=str(path))
        if (found.n_layers, found.d_ff) != (n_layers, d_ff):
            raise NeuronSetError(
                f"{path} was made for {found.n_layers} layers × {found.d_ff} neurons, the model has {n_layers} × {d_ff}",
                "use a neuron set identified on this model")
        return found
    try:
        nested = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint bytes
        raise NeuronSetError(f"{path} is not a readable .pth neuron file ({type(exc).__name__})",
                             "expected list[lang] → list[layer] → LongTensor (Tang et al.)") from exc
    if not isinstance(nested, (list, tuple)) or not all(isinstance(per, (list, tuple)) for per in nested):
        raise NeuronSetError(f"{path} does not hold list[lang] → list[layer] → LongTensor",
                             "this is the layout of Tang et al.'s activation masks")
    langs = list(langs) if langs else [f"lang{i}" for i in range(len(nested))]
    if len(langs) != len(nested):
        raise NeuronSetError(f"{path} has {len(nested)} languages but {len(langs)} names were given",
                             "pass --langs in the file's language order")
    neurons = {}
    for lang, per_layer in zip(langs, nested):
        if len(per_layer) != n_layers:
            raise NeuronSetError(f"{path}: {lang} has {len(per_layer)} layers, the model has {n_layers}",
                                 "use a neuron file made for this model")
        rows = []
        for layer, idx in enumerate(per_layer):
            idx = torch.as_tensor(idx).long().flatten()
            rows.append(torch.stack([torch.full_like(idx, layer), idx], -1))
        neurons[lang] = torch.cat(rows) if rows else torch.zeros((0, 2), dtype=torch.long)
    return NeuronSet("imported", {"file": str(path)}, n_layers, d_ff, neurons)
