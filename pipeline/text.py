"""Text normalisation for matching and embedding, and language detection.

:func:`normalize` is applied to copies of text that are compared or embedded, never to the stored
``Source.text`` (offsets point into the text exactly as decoded).
"""

from __future__ import annotations

import re
import unicodedata

from pipeline.domain import sha256_text

ZWNJ = "\u200c"
_ARABIC_TO_PERSIAN = str.maketrans(
    {
        "\u064a": "\u06cc",  # Arabic yeh -> Persian yeh
        "\u0649": "\u06cc",  # alef maksura -> Persian yeh
        "\u0643": "\u06a9",  # Arabic kaf -> Persian keheh
    }
)
# tatweel, harakat (U+064B-U+065F), superscript alef; bidi marks and a stray byte-order mark
_DROP_RE = re.compile("[\u0640\u064b-\u065f\u0670\u200e\u200f\u061c\ufeff]")
_ZWNJ_RUN_RE = re.compile(f"{ZWNJ}+")
_ARABIC_SCRIPT_RE = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


def normalize(text: str) -> str:
    """Normalise ``text`` for matching and embedding (never for storage).

    Steps, in order: Unicode NFC; Arabic ``ي``/``ى`` -> Persian ``ی`` and Arabic ``ك`` -> Persian
    ``ک``; remove tatweel (U+0640), Arabic diacritics (U+064B-U+065F, U+0670) and bidi marks (LRM,
    RLM, ALM, a stray U+FEFF); collapse runs of ZWNJ (U+200C) and keep a ZWNJ only between two
    letters (so it is dropped next to spaces, punctuation or the ends); whitespace runs -> one space,
    stripped; NFC once more (a removal can bring a letter and a combining mark together). Letter
    case is kept.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The normalised text.

    Examples
    --------
    >>> normalize("علي  و كتاب")
    'علی و کتاب'
    >>> normalize("مَدرسه‌\u200cها") == "مدرسه\u200cها"
    True
    >>> normalize("می\u200c رود") == "می رود"
    True
    >>> normalize("كـــتاب")
    'کتاب'
    >>> normalize("  cafe\u0301\\n\\tbar ")
    'café bar'
    """
    text = unicodedata.normalize("NFC", text).translate(_ARABIC_TO_PERSIAN)
    text = _ZWNJ_RUN_RE.sub(ZWNJ, _DROP_RE.sub("", text))
    if ZWNJ in text:
        chars = list(text)
        kept = [
            c
            for i, c in enumerate(chars)
            if c != ZWNJ or (0 < i < len(chars) - 1 and chars[i - 1].isalpha() and chars[i + 1].isalpha())
        ]
        text = "".join(kept)
    # removals can leave a base letter next to a combining mark again: compose once more
    return unicodedata.normalize("NFC", " ".join(text.split()))


def normalized_hash(text: str) -> str:
    """Hex SHA-256 of ``normalize(text)``: a cache key that ignores spelling variants.

    >>> normalized_hash("علي") == normalized_hash("علی ")
    True
    >>> len(normalized_hash("x"))
    64
    """
    return sha256_text(normalize(text))


def detect_language(text: str) -> str:
    """``"fa"`` when most letters of ``text`` are in the Arabic script, else ``"en"``.

    Deterministic and dependency-free: it counts letters (Unicode category ``L*``); more than half in
    the Arabic script blocks gives ``"fa"``. Arabic script is taken as Persian, the language qualflow
    supports in that script (an Arabic or Urdu text is also reported as ``"fa"``). Everything else,
    including text with no letters, is ``"en"``.

    >>> detect_language("Interviewer: How did it start?")
    'en'
    >>> detect_language("مصاحبه‌گر: چطور شروع شد؟ It started in 2019.")
    'fa'
    >>> detect_language("123 ...")
    'en'
    """
    letters = arabic = 0
    for c in text:
        if unicodedata.category(c).startswith("L"):
            letters += 1
            if _ARABIC_SCRIPT_RE.match(c):
                arabic += 1
    return "fa" if letters and 2 * arabic > letters else "en"
