"""The conditions an analysis compares: without interventions, with them, and with random neurons.

A condition is a list of intervention specs (joined by ` + ` in one `--intervene`); `{lang}` in a
spec stands for each analysed language. A spec acts on the text of the language it names — the
model reads Japanese with the Japanese Type-1 neurons deactivated, and English as it is, which is
how Tezuka & Inoue compare the two spaces (SCIENCE.md §8) — and a spec without a language acts on
every text. With `{lang}`, a language the set has no neurons for (English, for transfer neurons) is
read as it is. The random condition of a condition writes the same values into neurons drawn at
random to match each set per language and layer (`neurons.baseline.random_baseline`, seeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.interventions.apply import EditPlan
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.core.neurons.neuron_set import NeuronSet
    from lsn_explorer.session.store import Session

LANG = "{lang}"


@dataclass(frozen=True)
class Condition:
    """One way of running the model: `specs` (pinned to record ids) and, for a random condition,
    the seed its neurons are drawn from."""

    key: str  # "none", "iv1", "random1" …: short, stable, used in tables
    label: str  # what the user wrote, e.g. "type1:{lang}=zero@last"; "random · …" for random
    specs: tuple[str, ...] = ()
    random_seed: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "label": self.label, "specs": list(self.specs), "random_seed": self.random_seed}


def build_conditions(intervene: Sequence[str], random_baseline: bool, session: Session | None,
                     seed: int = 0) -> list[Condition]:
    """`none`, one condition per `--intervene` text, and (with `random_baseline`) one random
    condition per intervened one. Syntax and stored sets are checked here, before any model work.

    Raises:
        InterventionError: bad syntax or an unknown set; LsnError: a random baseline for
            hand-typed neurons (there is no set to match), or one without interventions.
    """
    from lsn_explorer.core.interventions.resolve import pin_spec
    from lsn_explorer.core.interventions.spec import parse_intervention

    conditions = [Condition("none", "none")]
    for number, text in enumerate(intervene, 1):
        parts = [part.strip() for part in text.split(" + ") if part.strip()]
        if not parts:
            raise LsnError("an empty --intervene", "e.g. --intervene type1:{lang}=zero@last")
        specs = tuple(pin_spec(parse_intervention(part.replace(LANG, "en")).spec.replace(":en=", f":{LANG}=")
                               if LANG in part else parse_intervention(part).spec, session) for part in parts)
        conditions.append(Condition(f"iv{number}", " + ".join(parts), specs))
    if random_baseline:
        intervened = conditions[1:]
        if not intervened:
            raise LsnError("--random-baseline is matched to the neurons of an --intervene, and none was given",
                           "add --intervene SET:{lang}=zero@last, or leave out --random-baseline")
        for number, condition in enumerate(intervened, 1):
            if any(_is_list(spec) for spec in condition.specs):
                raise LsnError(f"--random-baseline needs a stored neuron set; {condition.label!r} lists neurons",
                               "name a set of the session (e.g. type1:{lang}=zero@last), or leave out --random-baseline")
            conditions.append(Condition(f"random{number}", f"random · {condition.label}", condition.specs, seed))
    return conditions


def _is_list(spec: str) -> bool:
    return spec.split("=", 1)[0].split(":", 1)[0][:1].isdigit()


class Planner:
    """Edit plans of conditions per language, resolved against one model and session; random
    sets are drawn once per (set, seed) and reused for every language."""

    def __init__(self, handle: ModelHandle, session: Session | None) -> None:
        self.handle, self.session = handle, session
        self._sets: dict[str, NeuronSet] = {}  # stored sets by pinned source, read once
        self._drawn: dict[tuple[str, int], NeuronSet] = {}

    def _set(self, source: str) -> NeuronSet:
        from lsn_explorer.core.interventions.resolve import stored_set

        if source not in self._sets:
            self._sets[source] = stored_set(source, self.handle, self.session)
        return self._sets[source]

    def applied(self, condition: Condition, lang: str) -> list[str]:
        """The specs of `condition` that act on `lang`'s text, with `{lang}` filled in."""
        from lsn_explorer.core.interventions.spec import parse_intervention

        chosen = []
        for spec in condition.specs:
            if LANG in spec:
                source = spec.split(":", 1)[0]
                if len(self._set(source).neurons.get(lang, ())) == 0:
                    continue  # this set has nothing for lang (English, for transfer neurons)
                chosen.append(spec.replace(LANG, lang))
                continue
            named = parse_intervention(spec).lang
            if named is None or named == lang:
                chosen.append(spec)
        return chosen

    def plan(self, condition: Condition, lang: str) -> tuple[EditPlan | None, str]:
        """(edit plan, cache key) for `lang`'s text under `condition`; (None, "none") when nothing
        acts on that text, so it shares the un-intervened states."""
        from lsn_explorer.core.interventions.resolve import resolve
        from lsn_explorer.core.interventions.spec import parse_intervention
        from lsn_explorer.core.neurons.baseline import random_baseline

        specs = self.applied(condition, lang)
        if not specs:
            return None, "none"
        interventions = [parse_intervention(spec) for spec in specs]
        stored = [iv.source for iv in interventions if iv.source != "list"]
        sets = {source: self._set(source) for source in stored}
        key = " + ".join(specs)
        if condition.random_seed is not None:
            for source in stored:
                drawn = (source, condition.random_seed)
                if drawn not in self._drawn:
                    self._drawn[drawn] = random_baseline(sets[source], seed=condition.random_seed)
                sets[source] = self._drawn[drawn]
            key = f"random(seed={condition.random_seed}) {key}"
        return resolve(interventions, self.handle, self.session, sets), key
