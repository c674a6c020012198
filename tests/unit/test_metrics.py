"""Answer metrics against hand-computed values (every expected number is worked out in a comment)."""

from __future__ import annotations

import pytest

from lsn_explorer.core.tasks.metrics import (
    accuracy,
    answer_tokens,
    exact_match,
    f1,
    mkqa_answer_tokens,
    mkqa_exact_match,
    mkqa_f1,
    mkqa_normalize_answer,
    normalize_answer,
    token_id_exact_match,
    token_id_f1,
    uses_character_tokens,
)

# --- SQuAD normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat, sat!", "cat sat"),  # lowercase, ASCII punctuation, article
        ("  Paris \t\n France  ", "paris france"),  # whitespace collapsed
        ("$1,000.", "1000"),  # $ is ASCII punctuation though Unicode calls it a symbol
        ("«Paris»", "paris"),  # Unicode guillemets (category Pi/Pf)
        ("北京。", "北京"),  # CJK full stop
        ("你好、世界？", "你好世界"),  # ideographic comma, full-width question mark
        ("theory of an apple", "theory of apple"),  # articles only as whole words
        ("Anna and Theo", "anna and theo"),
        ("A", ""),
        ("l'homme", "lhomme"),  # SQuAD deletes the apostrophe; only MKQA knows French elision
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("The cat sat", "en", ["cat", "sat"]),
        ("北京 大学。", "zh", ["北", "京", "大", "学"]),  # whitespace dropped, characters
        ("東京、日本", "ja", ["東", "京", "日", "本"]),
        ("ก ข", "th", ["ก", "ข"]),
        ("北京大学", "en", ["北京大学"]),  # without the language hint it is one word
    ],
)
def test_answer_tokens(text, lang, expected):
    assert answer_tokens(text, lang) == expected


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("zh", True), ("zh_cn", True), ("zh_TW", True), ("zh-hk", True), ("ja", True), ("th", True),
     ("km", True), ("en", False), ("ko", False), ("hi", False)],
)
def test_uses_character_tokens(lang, expected):
    assert uses_character_tokens(lang) is expected


# --- SQuAD EM / F1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "golds", "lang", "expected"),
    [
        ("  PARIS  ", ["paris"], "en", 1.0),  # case and space insensitive
        ("The Paris!", ["paris"], "en", 1.0),
        ("Paris France", ["paris"], "en", 0.0),
        ("London", ["Paris", "london."], "en", 1.0),  # any gold matches
        ("", ["cat"], "en", 0.0),
        ("the", ["a"], "en", 1.0),  # both normalise to empty
        ("北京 大学", ["北京大学"], "zh", 1.0),  # spaces do not matter between characters
        ("北京大学", ["北京"], "zh", 0.0),
    ],
)
def test_exact_match(prediction, golds, lang, expected):
    assert exact_match(prediction, golds, lang) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "golds", "lang", "expected"),
    [
        # [cat sat] vs [cat sat down]: P 2/2, R 2/3 → 2·1·(2/3)/(5/3) = 0.8
        ("the cat sat", ["a cat sat down"], "en", 0.8),
        # punctuation ignored: [cat sat] vs [cat sat] → 1
        ("cat, sat.", ["Cat sat!"], "en", 1.0),
        # Counter semantics: [cat cat cat] vs [cat dog]: overlap 1, P 1/3, R 1/2 → 0.4
        ("cat cat cat", ["cat dog"], "en", 0.4),
        # a repeat on both sides counts twice: [cat cat dog] vs [cat cat]: overlap 2, P 2/3, R 1 → 0.8
        ("cat cat dog", ["cat cat"], "en", 0.8),
        # no shared token
        ("dog", ["cat"], "en", 0.0),
        # max over golds: dog 0; cat → P 1/2, R 1 → 2/3; cat sat on → P 1, R 2/3 → 0.8
        ("cat sat", ["dog", "cat", "cat sat on"], "en", 0.8),
        # empty prediction vs non-empty gold, and the reverse
        ("", ["cat"], "en", 0.0),
        ("cat", ["..."], "en", 0.0),
        # both empty after normalisation
        ("", [""], "en", 1.0),
        ("The!", ["an"], "en", 1.0),
        # zh characters: [北 京] vs [北 京 大 学]: P 1, R 1/2 → 2/3
        ("北京", ["北京大学"], "zh", 2 / 3),
        # and the other way round: P 1/2, R 1 → 2/3
        ("北京大学", ["北京"], "zh", 2 / 3),
        # the same strings as one whitespace token each share nothing
        ("北京大学", ["北京"], "en", 0.0),
        # CJK punctuation dropped: [北 京] vs [北 京] → 1
        ("「北京」。", ["北京"], "zh", 1.0),
        # ja: [東 京 都] vs [東 京]: P 2/3, R 1 → (4/3)/(5/3) = 0.8
        ("東京都", ["東京"], "ja", 0.8),
        # ja with 、: [東 京 日 本] vs [日 本]: P 1/2, R 1 → 2/3
        ("東京、日本", ["日本"], "ja", 2 / 3),
    ],
)
def test_f1(prediction, golds, lang, expected):
    assert f1(prediction, golds, lang) == pytest.approx(expected)


# --- token-id variant (Mondal et al.) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred_ids", "gold_ids_list", "expected"),
    [
        ([1, 2], [[1, 2]], 1.0),
        ([1, 2], [[2, 1]], 0.0),  # order matters for EM
        ([1, 2], [[3], [2, 1], [1, 2]], 1.0),
        ([], [[1]], 0.0),
        ([], [[]], 1.0),
    ],
)
def test_token_id_exact_match(pred_ids, gold_ids_list, expected):
    assert token_id_exact_match(pred_ids, gold_ids_list) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pred_ids", "gold_ids_list", "expected"),
    [
        # {5:3, 7:1} ∩ {5:1, 7:2} = {5:1, 7:1}: overlap 2, P 2/4, R 2/3 → (2/3)/(7/6) = 4/7
        ([5, 5, 5, 7], [[5, 7, 7]], 4 / 7),
        # {5:3, 7:1} ∩ {5:2, 7:2} = {5:2, 7:1}: overlap 3, P 3/4, R 3/4 → 0.75 (a set would give 0.5)
        ([5, 5, 5, 7], [[5, 5, 7, 7]], 0.75),
        # order ignored for F1
        ([1, 2], [[2, 1]], 1.0),
        # max over golds: [3] → 0; [1 2 3] → P 1, R 2/3 → 0.8
        ([1, 2], [[3], [1, 2, 3]], 0.8),
        ([], [[1, 2]], 0.0),
        ([4], [[]], 0.0),
        ([], [[]], 1.0),
    ],
)
def test_token_id_f1(pred_ids, gold_ids_list, expected):
    assert token_id_f1(pred_ids, gold_ids_list) == pytest.approx(expected)


# --- MKQA ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("L'Homme", "fr", "homme"),  # elided article glued to the next word
        ("l\u2019homme", "fr", "homme"),  # typographic apostrophe
        ("de la musique", "fr", "musique"),  # two-word article
        ("de Gaulle", "fr", "de gaulle"),  # "de" alone is not a French article
        ("Les Misérables", "fr", "misérables"),
        ("the cat", "fr", "the cat"),  # English articles only for English
        ("The (cat)", "en", "cat"),
        ("un'amica", "it", "amica"),
        ("dell'anno", "it", "dellanno"),  # an articulated preposition is not an article
        ("Gli Uffizi", "it", "uffizi"),
        ("Der Hund", "de", "hund"),
        ("het huis", "nl", "huis"),
        ("o Brasil", "pt", "brasil"),
        ("o Brasil", "en", "o brasil"),
        ("los Ángeles", "es", "ángeles"),
        ("det röda huset", "sv", "röda huset"),
        ("«Paris», 1,000.", "en", "paris 1000"),  # Unicode and ASCII punctuation deleted
    ],
)
def test_mkqa_normalize_answer(text, lang, expected):
    assert mkqa_normalize_answer(text, lang) == expected


def test_mkqa_answer_tokens_uses_characters_for_mkqa_codes():
    assert mkqa_answer_tokens("北京 市。", "zh_cn") == ["北", "京", "市"]
    assert mkqa_answer_tokens("北京 市。", "zh_tw") == ["北", "京", "市"]
    assert mkqa_answer_tokens("北京 市。", "ko") == ["北京", "市"]


@pytest.mark.parametrize(
    ("prediction", "golds", "lang", "expected"),
    [
        ("l'homme", ["homme"], "fr", 1.0),
        ("Der Hund", ["hund"], "de", 1.0),
        ("1,000", ["1000"], "en", 1.0),
        ("New York", ["NYC", "new york city"], "en", 0.0),
        ("New York", ["NYC", "the New York"], "en", 1.0),  # an alias matches
        ("", ["x"], "en", 0.0),
        ("the", ["a"], "en", 1.0),
    ],
)
def test_mkqa_exact_match(prediction, golds, lang, expected):
    assert mkqa_exact_match(prediction, golds, lang) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "golds", "lang", "expected"),
    [
        # elision: [homme] vs [homme] → 1; SQuAD's rules would compare lhomme with homme
        ("l'homme", ["homme"], "fr", 1.0),
        # [gato negro] vs [gato]: P 1/2, R 1 → 2/3
        ("el gato negro", ["gato"], "es", 2 / 3),
        # max over answer + aliases: NYC 0; [new york] vs pred [new york city]: P 2/3, R 1 → 0.8
        ("New York City", ["NYC", "New York"], "en", 0.8),
        # zh_cn characters: [北 京] vs [北 京 市]: P 1, R 2/3 → 0.8
        ("北京", ["北京市"], "zh_cn", 0.8),
        # our code zh gives the same tokens
        ("北京", ["北京市"], "zh", 0.8),
        # Counter semantics: [la la la] is not an English article; vs [la]: overlap 1, P 1/3, R 1 → 0.5
        ("la la la", ["la"], "en", 0.5),
        # ... but in Spanish all three are articles: both empty → 1
        ("la la la", ["la"], "es", 1.0),
        ("", ["Paris"], "en", 0.0),
        ("Paris", ["the"], "en", 0.0),
        ("the", ["a"], "en", 1.0),
    ],
)
def test_mkqa_f1(prediction, golds, lang, expected):
    assert mkqa_f1(prediction, golds, lang) == pytest.approx(expected)


def test_squad_f1_does_not_know_french_elision():
    # The contrast that motivates MKQA's own normalisation: lhomme ≠ homme.
    assert f1("l'homme", ["homme"], "fr") == pytest.approx(0.0)


# --- accuracy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predictions", "labels", "expected"),
    [
        ([1, 0, 2, 2], [1, 1, 2, 0], 0.5),
        (["a", "b", "c"], ["a", "b", "d"], 2 / 3),
        ([0], [1], 0.0),
        ([3, 3], [3, 3], 1.0),
    ],
)
def test_accuracy(predictions, labels, expected):
    assert accuracy(predictions, labels) == pytest.approx(expected)


@pytest.mark.parametrize(("predictions", "labels"), [([1, 2], [1]), ([], [])])
def test_accuracy_rejects_mismatched_or_empty(predictions, labels):
    with pytest.raises(ValueError):
        accuracy(predictions, labels)


# --- input errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "score",
    [
        lambda: exact_match("cat", []),
        lambda: f1("cat", [], "en"),
        lambda: mkqa_exact_match("cat", [], "en"),
        lambda: mkqa_f1("cat", [], "en"),
        lambda: token_id_exact_match([1], []),
        lambda: token_id_f1([1], []),
    ],
)
def test_empty_golds_raise(score):
    with pytest.raises(ValueError):
        score()


def test_single_string_gold_is_rejected():
    # "cat" as golds would otherwise be scored as the three golds c, a, t.
    with pytest.raises(TypeError):
        f1("c", "cat", "en")
