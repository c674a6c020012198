"""Answer-matching metrics: SQuAD EM/F1, its token-id variant, MKQA token F1, and accuracy.

Plain Python on strings and integer lists, so every number here can be checked by hand in a unit
test; nothing in this module loads a model or a tokenizer. Languages are named by our code
(`zh`) or by a dataset's code (MKQA `zh_cn`); both resolve to the same rules.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Hashable, Sequence
from functools import lru_cache

# Written without spaces between words, so whitespace tokens would make a whole clause one token;
# these languages are scored on single characters instead (MKQA's official scorer does the same
# for zh_cn/zh_tw/zh_hk/ja/th/km).
CHARACTER_TOKEN_LANGS = frozenset({"zh", "ja", "th", "km"})

# Articles dropped before MKQA scoring, keyed by MKQA code (Longpre et al. 2021). Entries ending in
# an apostrophe are elided forms glued to the next word ("l'homme"); "de la" is a two-word article.
MKQA_ARTICLES: dict[str, tuple[str, ...]] = {
    "en": ("a", "an", "the"),
    "es": ("el", "la", "lo", "los", "las", "un", "una", "unos", "unas"),
    "fr": ("le", "la", "les", "l'", "un", "une", "des", "du", "de la"),
    "it": ("il", "lo", "la", "i", "gli", "le", "l'", "un", "uno", "una", "un'"),
    "de": ("der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines"),
    "nl": ("de", "het", "een"),
    "pt": ("o", "a", "os", "as", "um", "uma", "uns", "umas"),
    "sv": ("en", "ett", "den", "det", "de"),
    "da": ("en", "et", "den", "det", "de"),
    "no": ("en", "ei", "et", "den", "det", "de"),
}

# The official SQuAD v1.1 script removes English articles whatever the language; XQuAD numbers
# in the literature are computed that way, so we keep it for comparability.
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")

# Codes that differ from MKQA's only by name (Norwegian Bokmål is "no" in MKQA).
_LANG_ALIASES = {"nb": "no"}

# Apostrophes an elided article may be written with: ASCII, right/left single quote, modifier.
_APOSTROPHES = "'\u2019\u2018\u02bc"


def base_lang(lang: str) -> str:
    """Reduce our code or a dataset code to the bare language: "zh_cn" and "zh-TW" → "zh"."""
    bare = lang.strip().lower().replace("-", "_").split("_")[0]
    return _LANG_ALIASES.get(bare, bare)


def uses_character_tokens(lang: str) -> bool:
    """True for languages scored on characters (zh, ja, th, km, in our or MKQA codes)."""
    return base_lang(lang) in CHARACTER_TOKEN_LANGS


def _is_punctuation(ch: str) -> bool:
    # string.punctuation covers ASCII symbols such as $ and ^ that Unicode files under "S";
    # the "P" categories cover 。、？« and the curly quotes.
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def _strip_punctuation(text: str) -> str:
    return "".join(ch for ch in text if not _is_punctuation(ch))


def _tokens(normalized: str, lang: str) -> list[str]:
    if uses_character_tokens(lang):
        return [ch for ch in normalized if not ch.isspace()]
    return normalized.split()


def _overlap_f1(prediction: Sequence[Hashable], gold: Sequence[Hashable]) -> float:
    """Token-overlap F1 with multiset (Counter) intersection, as in the SQuAD v1.1 script."""
    if not prediction and not gold:
        return 1.0
    if not prediction or not gold:
        return 0.0
    common = sum((Counter(prediction) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision = common / len(prediction)
    recall = common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _check_golds(golds: Sequence[object]) -> None:
    # A bare string is a Sequence[str] too and would be scored character by character.
    if isinstance(golds, str):
        raise TypeError("golds must be a sequence of answers, not a single string")
    if len(golds) == 0:
        raise ValueError("at least one gold answer is needed to score a prediction")


# --- SQuAD v1.1 (XQuAD) -------------------------------------------------------------------------


def normalize_answer(text: str, lang: str = "en") -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation and English articles, collapse spaces.

    Args:
        text: An answer string.
        lang: Our language code; accepted for symmetry with `answer_tokens` (the SQuAD rules
            do not depend on it).

    Returns:
        The normalised answer, words separated by single spaces.
    """
    del lang  # the official script applies the same rules to every language
    text = _strip_punctuation(text.lower())
    text = _SQUAD_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str, lang: str) -> list[str]:
    """Normalise `text` and split it into words, or into characters for zh, ja, th and km."""
    return _tokens(normalize_answer(text, lang), lang)


def exact_match(prediction: str, golds: Sequence[str], lang: str = "en") -> float:
    """1.0 when the normalised prediction equals any normalised gold answer, else 0.0.

    Tokens are compared rather than strings, so in character-token languages a stray space
    ("北京 大学" vs "北京大学") does not break a match; for other languages the two agree.

    Raises:
        ValueError: `golds` is empty.
    """
    _check_golds(golds)
    predicted = answer_tokens(prediction, lang)
    return max(float(predicted == answer_tokens(gold, lang)) for gold in golds)


def f1(prediction: str, golds: Sequence[str], lang: str = "en") -> float:
    """SQuAD token-overlap F1, the best over all gold answers.

    Both sides empty after normalisation scores 1.0; exactly one side empty scores 0.0.

    Raises:
        ValueError: `golds` is empty.
    """
    _check_golds(golds)
    predicted = answer_tokens(prediction, lang)
    return max(_overlap_f1(predicted, answer_tokens(gold, lang)) for gold in golds)


# --- Token-id variant (Mondal et al.) ------------------------------------------------------------


def token_id_exact_match(pred_ids: Sequence[int], gold_ids_list: Sequence[Sequence[int]]) -> float:
    """EM over tokenizer ids, without normalisation, as the Mondal et al. evaluation code does.

    Kept so their numbers can be reproduced; it is stricter than `exact_match` (case, spacing and
    punctuation all change the ids).

    Raises:
        ValueError: `gold_ids_list` is empty.
    """
    _check_golds(gold_ids_list)
    predicted = list(pred_ids)
    return max(float(predicted == list(gold)) for gold in gold_ids_list)


def token_id_f1(pred_ids: Sequence[int], gold_ids_list: Sequence[Sequence[int]]) -> float:
    """Counter-overlap F1 over tokenizer ids, the best over all golds (Mondal et al. variant).

    Raises:
        ValueError: `gold_ids_list` is empty.
    """
    _check_golds(gold_ids_list)
    return max(_overlap_f1(list(pred_ids), list(gold)) for gold in gold_ids_list)


# --- MKQA ----------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _article_patterns(lang: str) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(elided-article prefix pattern, whole-word article pattern) for one bare language code."""
    articles = MKQA_ARTICLES.get(lang, ())
    elided = [a[:-1] for a in articles if a.endswith("'")]
    words = [a for a in articles if not a.endswith("'")]
    # Longest first so "de la" wins over a shorter article that starts the same way.
    words.sort(key=len, reverse=True)
    elided_re = words_re = None
    if elided:
        alternatives = "|".join(re.escape(a) for a in elided)
        elided_re = re.compile(rf"(?<!\w)(?:{alternatives})[{_APOSTROPHES}]")
    if words:
        # Between the words of "de la" any run of whitespace counts.
        alternatives = "|".join(r"\s+".join(re.escape(part) for part in w.split()) for w in words)
        words_re = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    return elided_re, words_re


def mkqa_normalize_answer(text: str, lang: str) -> str:
    """MKQA normalisation: lowercase, drop elided and whole-word articles of `lang`, punctuation.

    Elided articles go first, while their apostrophe still marks them ("l'homme" → "homme");
    whole-word articles go after punctuation is stripped, so "the" in "(the) cat" is found.
    """
    elided_re, words_re = _article_patterns(base_lang(lang))
    text = text.lower()
    if elided_re is not None:
        text = elided_re.sub("", text)
    text = _strip_punctuation(text)
    if words_re is not None:
        text = words_re.sub(" ", text)
    return " ".join(text.split())


def mkqa_answer_tokens(text: str, lang: str) -> list[str]:
    """MKQA-normalise `text` and split it into words, or characters for zh_cn/zh_tw/zh_hk/ja/th/km."""
    return _tokens(mkqa_normalize_answer(text, lang), lang)


def mkqa_exact_match(prediction: str, golds: Sequence[str], lang: str) -> float:
    """1.0 when the prediction matches any gold answer or alias after MKQA normalisation.

    Args:
        prediction: The model's answer.
        golds: Every gold answer text and alias, flattened into one list.
        lang: Our code or the MKQA code (`zh` and `zh_cn` both work).

    Raises:
        ValueError: `golds` is empty.
    """
    _check_golds(golds)
    predicted = mkqa_answer_tokens(prediction, lang)
    return max(float(predicted == mkqa_answer_tokens(gold, lang)) for gold in golds)


def mkqa_f1(prediction: str, golds: Sequence[str], lang: str) -> float:
    """MKQA token F1: the best Counter-overlap F1 over all gold answers and aliases.

    Empty handling follows `f1`: both empty scores 1.0, exactly one empty 0.0.

    Raises:
        ValueError: `golds` is empty.
    """
    _check_golds(golds)
    predicted = mkqa_answer_tokens(prediction, lang)
    return max(_overlap_f1(predicted, mkqa_answer_tokens(gold, lang)) for gold in golds)


# --- Classification -------------------------------------------------------------------------------


def accuracy(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
    """Fraction of positions where the prediction equals the label.

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("accuracy of zero examples is undefined")
    return sum(pred == label for pred, label in zip(predictions, labels)) / len(labels)
