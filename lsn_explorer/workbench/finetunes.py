"""Fine-tunes for front ends: the Fine-tune form's request (checked here, so a typo never starts a
process) and the session's adapters as a picker lists them. No Textual, no torch.

The form names neurons the way Mondal et al.'s Table 3 does: a stored neuron set, a setup
(source | target | both | random | none, `core.finetune.config.SETUPS`), the source language
(English in the paper) and the training language as the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsn_explorer.core.data.languages import get_language
from lsn_explorer.core.finetune.config import SETUPS, FinetuneError, FinetuneSpec, from_recipe, setup_neurons
from lsn_explorer.errors import LsnError


@dataclass(frozen=True)
class FinetuneRequest:
    """What the Fine-tune form asks for (empty strings: the defaults)."""

    task: str = "lm"
    train_lang: str = "zh"
    neuron_set: str = ""  # a stored set; "" = none (only the "none" setup works without one)
    setup: str = "target"
    source_lang: str = "en"
    recipe: str = ""  # "" = the demo defaults
    max_steps: int | None = None
    batch: int | None = None
    name: str = ""  # "" = task-lang-neurons

    @classmethod
    def from_fields(cls, *, task: str, train_lang: str, neuron_set: str, setup: str, source_lang: str, recipe: str,
                    max_steps: str, batch: str, name: str) -> FinetuneRequest:
        """The request from the form's text fields.

        Raises:
            LsnError / LanguageError: a number that is not one, or an unknown language.
        """
        return cls(task=task, train_lang=get_language(train_lang.strip()).code, neuron_set=neuron_set.strip(),
                   setup=setup, source_lang=get_language(source_lang.strip() or "en").code, recipe=recipe,
                   max_steps=_count(max_steps, "max steps"), batch=_count(batch, "the batch size"),
                   name=name.strip())

    def neurons(self) -> str:
        """`--neurons` of the setup (`core.finetune.config.setup_neurons`)."""
        if self.setup not in SETUPS:
            raise FinetuneError(f"unknown setup {self.setup!r}", f"setups: {', '.join(SETUPS)}")
        if self.setup != "none" and not self.neuron_set:
            raise FinetuneError(f"the {self.setup} setup needs a neuron set",
                                "identify one in the Neurons tab (F3), or choose the setup 'none'")
        return setup_neurons(self.setup, self.neuron_set, self.source_lang, self.train_lang)

    def spec(self) -> FinetuneSpec:
        """The validated spec (a recipe's values, overridden by the form's fields).

        Raises:
            FinetuneError: as `FinetuneSpec` (e.g. the "none" setup leaves nothing to train).
        """
        given: dict[str, Any] = {"task": self.task, "train_lang": self.train_lang, "neurons": self.neurons(),
                                 "max_steps": self.max_steps, "batch": self.batch, "name": self.name or None}
        if self.setup == "none" and self.task != "xnli" and not self.recipe:
            given["attention"] = ["q", "v"]  # Mondal's "none": attention only (the recipes name their own)
        return from_recipe(self.recipe or None, **given)


@dataclass(frozen=True)
class AdapterRow:
    """One adapter of the session, as a picker lists it."""

    name: str
    label: str  # "lm-zh-lape-zh · lm zh · 30 steps · loss 2.91"
    present: bool  # its folder is in the session (a copied session may lack it)


def adapter_row(row: dict[str, Any]) -> AdapterRow:
    """The picker's row of one `core.model.adapters.list_adapters` entry."""
    parts = [str(row["name"]), f"{row.get('task') or '?'} {row.get('lang') or '?'}"]
    if row.get("steps"):
        parts.append(f"{row['steps']} steps")
    if row.get("final_loss") is not None:
        parts.append(f"loss {row['final_loss']:.2f}")
    if not row.get("present", True):
        parts.append("folder missing")
    return AdapterRow(str(row["name"]), " · ".join(parts), bool(row.get("present", True)))


def _count(text: str, what: str) -> int | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise LsnError(f"{what} must be a whole number ≥ 1 (got {text!r})", "leave it empty for the default")
    return int(text)
