"""Writing systems: which script a character belongs to, and a text's script mix.

Used to check that the demo corpus is in the expected script, that continuations stay in the
prompt's language, and (in the TUI) to show the script mix of a generation. Only letters
(`str.isalpha`) count; digits, punctuation and combining marks are ignored.
"""

from __future__ import annotations

import bisect
from collections import Counter

# (first code point, last code point, script). Sorted by first code point.
_RANGES: tuple[tuple[int, int, str], ...] = tuple(sorted((
    (0x0041, 0x005A, "Latin"), (0x0061, 0x007A, "Latin"), (0x00C0, 0x024F, "Latin"),
    (0x1E00, 0x1EFF, "Latin"),
    (0x0370, 0x03FF, "Greek"),
    (0x0400, 0x04FF, "Cyrillic"),
    (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0xFB50, 0xFDFF, "Arabic"),
    (0xFE70, 0xFEFF, "Arabic"),
    (0x0900, 0x097F, "Devanagari"), (0xA8E0, 0xA8FF, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"),
    (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0B80, 0x0BFF, "Tamil"),
    (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"),
    (0x0D00, 0x0D7F, "Malayalam"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x1100, 0x11FF, "Hangul"), (0x3130, 0x318F, "Hangul"), (0xAC00, 0xD7AF, "Hangul"),
    (0x3005, 0x3007, "Han"), (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"),
    (0xF900, 0xFAFF, "Han"),
    (0x3040, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"), (0x31F0, 0x31FF, "Katakana"),
)))
_STARTS = [r[0] for r in _RANGES]

# A language's script name may stand for several Unicode scripts (Japanese mixes three).
SCRIPT_MEMBERS: dict[str, frozenset[str]] = {
    "Japanese": frozenset({"Han", "Hiragana", "Katakana"}),
}


def script_of(char: str) -> str:
    """Unicode script of one character ("Other" when outside the known ranges)."""
    point = ord(char)
    i = bisect.bisect_right(_STARTS, point) - 1
    if i >= 0 and _RANGES[i][0] <= point <= _RANGES[i][1]:
        return _RANGES[i][2]
    return "Other"


def script_mix(text: str) -> dict[str, float]:
    """Share of the letters of `text` in each script, largest first (empty for no letters)."""
    counts = Counter(script_of(c) for c in text if c.isalpha())
    total = sum(counts.values())
    return {name: n / total for name, n in counts.most_common()} if total else {}


def script_share(text: str, script: str) -> float:
    """Fraction of the letters of `text` written in `script` (a language-table script name)."""
    members = SCRIPT_MEMBERS.get(script, frozenset({script}))
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(script_of(c) in members for c in letters) / len(letters)
