"""FLORES+ from the Hugging Face hub: evaluation-only parallel sentences for held-out perplexity.

`openlanguagedata/flores_plus` (the FLORES-200 sentences, now kept by the Open Language Data
Initiative) has one config per language named `<iso_639_3>_<iso_15924>` (`hin_Deva`), splits `dev`
(997 sentences) and `devtest` (1012), and a `text` column. It is gated: accept its terms on the
hub once and log in. Local FLORES-200 files (`hin_Deva.devtest`) are read by `core.data.corpora`.
"""

from __future__ import annotations

from lsn_explorer.core.data.languages import dataset_code
from lsn_explorer.core.tasks.files import HubSource, load_hub_split
from lsn_explorer.errors import TaskFileError

HUB_DATASET = "openlanguagedata/flores_plus"
HUB_SPLITS: tuple[str, ...] = ("dev", "devtest")
HUB_SOURCE = HubSource("FLORES+", HUB_DATASET,
                       "or pass a folder of FLORES-200 files (hin_Deva.devtest) or <lang>.txt files")
# FLORES+ names some languages more precisely than FLORES-200, whose codes the language table
# holds: Chinese became Mandarin (cmn_Hans, cmn_Hant) in the FLORES+ relabelling.
_FLORES_PLUS_CODES = {"zho_Hans": "cmn_Hans", "zho_Hant": "cmn_Hant"}


def flores_plus_code(lang: str) -> str:
    """The FLORES+ config of our language code (`hi` → hin_Deva, `zh` → cmn_Hans).

    Raises:
        LanguageError: the language table has no FLORES code for `lang`.
    """
    code = dataset_code("flores", lang)
    return _FLORES_PLUS_CODES.get(code, code)


def hub_lines(lang: str, split: str = "devtest", dataset: str = HUB_DATASET) -> list[str]:
    """The sentences of one language and split of FLORES+, from the Hugging Face hub (or the local
    datasets cache, where `datasets` keeps every download: only the first call needs the network).

    Args:
        lang: our language code (mapped to the FLORES+ config by `flores_plus_code`).
        split: dev | devtest.
        dataset: hub id (`openlanguagedata/flores_plus`, or a copy with the same configs and column).

    Returns:
        The stripped, non-empty `text` of each row, in dataset order (line i is the same sentence
        in every language).

    Raises:
        LanguageError: the language has no FLORES code.
        TaskFileError: an unknown split, `datasets` is not installed, the download failed (offline
            and not cached, gated without access, no config for the language), or rows lack `text`.
    """
    config = flores_plus_code(lang)
    if split not in HUB_SPLITS:
        raise TaskFileError(f"FLORES+ has no split {split!r}", f"use one of: {', '.join(HUB_SPLITS)}")
    rows = load_hub_split(HUB_SOURCE, dataset, config, split)
    try:
        texts = [str(row["text"]).strip() for row in rows]
    except (KeyError, TypeError) as exc:
        raise TaskFileError(f"{dataset} ({config}, {split}) rows have no 'text' field",
                            "FLORES+ rows hold each sentence in a `text` column") from exc
    return [text for text in texts if text]
