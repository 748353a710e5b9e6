"""Text normalisation for matching and embedding, and language detection.

:func:`normalize` is applied to copies of text that are compared or embedded, never to the stored
``Source.text`` (offsets point into the text exactly as decoded).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

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


#: Scripts written in (nearly) one language: the code a text mostly in that script gets.
_SCRIPT_LANGUAGE = {
    "GREEK": "el",
    "HEBREW": "he",
    "THAI": "th",
    "ARMENIAN": "hy",
    "GEORGIAN": "ka",
    "BENGALI": "bn",
    "TAMIL": "ta",
    "TELUGU": "te",
    "KANNADA": "kn",
    "MALAYALAM": "ml",
    "GUJARATI": "gu",
    "GURMUKHI": "pa",
    "ORIYA": "or",
    "SINHALA": "si",
    "KHMER": "km",
    "LAO": "lo",
    "MYANMAR": "my",
    "ETHIOPIC": "am",
    "TIBETAN": "bo",
}
#: Scripts shared by several languages: the candidates py3langid chooses among, the default first (the
#: answer when no other candidate is clearly more likely).
_SCRIPT_CANDIDATES = {
    "LATIN": (
        "en",
        "de",
        "fr",
        "es",
        "it",
        "pt",
        "nl",
        "tr",
        "pl",
        "sv",
        "da",
        "no",
        "fi",
        "cs",
        "sk",
        "sl",
        "hr",
        "ro",
        "hu",
        "et",
        "lv",
        "lt",
        "ca",
        "id",
        "ms",
        "vi",
        "tl",
        "sw",
        "af",
        "sq",
        "is",
    ),  # fmt: skip
    "CYRILLIC": ("ru", "uk", "bg", "sr", "mk", "be", "kk"),
    "ARABIC": ("fa", "ar", "ur", "ps"),
    "DEVANAGARI": ("hi", "mr", "ne"),
}
_CJK = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")
#: Every code :func:`detect_language` can give (so a valid ``language`` in ``qualflow.toml``).
DETECTED_LANGUAGES = frozenset(
    [*_SCRIPT_LANGUAGE.values(), *(c for cs in _SCRIPT_CANDIDATES.values() for c in cs), "zh", "ja", "ko"]
)
#: A candidate other than the script's default must have at least this share of the candidates'
#: probability, and a Latin-script text at least ``_MIN_LATIN_LETTERS`` letters: English when unsure.
_MIN_SHARE = 0.6
_MIN_LATIN_LETTERS = 20
_DETECT_CHARS = 50_000  # a long source is decided on its first 50,000 characters


def _script(c: str) -> str:
    name = unicodedata.name(c, "")
    if name.startswith("CJK") or name.startswith("IDEOGRAPHIC"):
        return "CJK"
    return name.split(" ", 1)[0]


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # 0.2.x (numpy 1.x) names the loader of the bundled model from_pickled_model; 0.4 from_model_file
    load = getattr(LanguageIdentifier, "from_model_file", None) or LanguageIdentifier.from_pickled_model
    return load(MODEL_FILE, norm_probs=True)


def _choose(text: str, candidates: tuple[str, ...]) -> str:
    """The most likely of ``candidates`` for ``text`` by py3langid, or the first when none is clear."""
    scores = dict(_identifier().rank(text))
    probs = {c: scores.get(c, 0.0) for c in candidates}
    total = sum(probs.values())
    if total < 0.5:  # the classifier reads another script's words in it (a mixed text): the default
        return candidates[0]
    best = max(candidates, key=lambda c: (probs[c], c == candidates[0]))
    return best if best == candidates[0] or probs[best] >= _MIN_SHARE * total else candidates[0]


def detect_language(text: str) -> str:
    """The language code of ``text`` (an ISO 639-1 code such as ``"en"``, ``"de"``, ``"fa"``, ``"zh"``).

    Deterministic, and English when unsure. The letters (Unicode category ``L*``) are counted by
    script; unless one script has more than half of them the text is ``"en"`` (a mixed or letterless
    text). Then:

    - a script of one language gives that language (Greek ``el``, Hebrew ``he``, Thai ``th``, ...);
    - Chinese characters, kana and hangul together: ``ko`` when hangul is at least half of them,
      ``ja`` when kana are at least a tenth, else ``zh``;
    - a script of several languages (Latin, Cyrillic, Arabic, Devanagari) is decided by the
      py3langid classifier (its own bundled model, no download) restricted to that script's
      languages: ``en``/``ru``/``fa``/``hi`` unless another one has at least 60% of their
      probability (and, for Latin, the text has at least 20 letters).

    >>> detect_language("Interviewer: How did it start?")
    'en'
    >>> detect_language("مصاحبه‌گر: چطور شروع شد؟ It started in 2019.")
    'fa'
    >>> detect_language("Ich habe den Film gestern gesehen, und er hat mich sehr berührt.")
    'de'
    >>> detect_language("它让我非常感动。音乐很美，最后我哭了。")
    'zh'
    >>> detect_language("Ja, sehr.")
    'en'
    >>> detect_language("123 ...")
    'en'
    """
    text = text[:_DETECT_CHARS]
    counts: dict[str, int] = {}
    letters = 0
    for c in text:
        if unicodedata.category(c).startswith("L"):
            letters += 1
            script = _script(c)
            script = "CJK" if script in _CJK else script
            counts[script] = counts.get(script, 0) + 1
    if not letters:
        return "en"
    script, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    if 2 * n <= letters:
        return "en"
    if script in _SCRIPT_LANGUAGE:
        return _SCRIPT_LANGUAGE[script]
    if script == "CJK":
        hangul = kana = 0
        for c in text:
            name = unicodedata.name(c, "")
            hangul += name.startswith("HANGUL")
            kana += name.startswith("HIRAGANA") or name.startswith("KATAKANA")
        return "ko" if 2 * hangul >= n else "ja" if 10 * kana >= n else "zh"
    if script in _SCRIPT_CANDIDATES:
        if script == "LATIN" and n < _MIN_LATIN_LETTERS:
            return "en"
        return _choose(text, _SCRIPT_CANDIDATES[script])
    return "en"


def counted(n: object, word: str, plural: str | None = None) -> str:
    """``n`` and ``word``, in the plural (``plural``, else ``word + "s"``) unless ``n`` is 1.

    >>> counted(1, "held-out source"), counted(2, "new version"), counted(0, "coding")
    ('1 held-out source', '2 new versions', '0 codings')
    >>> counted(1, "category", "categories"), counted(3, "category", "categories")
    ('1 category', '3 categories')
    """
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HIRAGANA = "\u3040-\u309f"
_HAS_CJK = re.compile(f"[{_HAN}{_KATAKANA}{_HIRAGANA}]")
_HAS_KANA = re.compile(f"[{_KATAKANA}{_HIRAGANA}]")
HAN_RUN = re.compile(f"[{_HAN}]+")
_JA_WORD = re.compile(f"[{_HAN}]+|[{_KATAKANA}]+")
_HIRAGANA_RUN = re.compile(f"[{_HIRAGANA}]+")
HAN_BIGRAM = re.compile(f"[{_HAN}]{{2}}")


def cjk_words(text: str) -> str:
    """``text`` with its Chinese and Japanese, written without spaces, split into word-like tokens (the
    rest unchanged), so that word n-grams, stop words and TF-IDF work on them as on spaced scripts.

    Japanese (a text with kana): runs of kanji and runs of katakana are the content words, the
    hiragana between them (particles, endings) is dropped. Chinese: each run of Han characters becomes
    its overlapping character bigrams (most Chinese words are two characters; Lucene's CJK analyzer
    does the same), which :func:`join_bigrams` turns back into one string in a phrase.

    >>> cjk_words("工作压力")
    ' 工作 作压 压力 '
    >>> cjk_words("仕事のストレスが大きい").split()
    ['仕事', 'ストレス', '大']
    >>> cjk_words("budget cuts")
    'budget cuts'
    """
    if not _HAS_CJK.search(text):
        return text
    if _HAS_KANA.search(text):
        return _JA_WORD.sub(lambda m: f" {m.group()} ", _HIRAGANA_RUN.sub(" ", text))

    def bigrams(m: re.Match[str]) -> str:
        run = m.group()
        return " " + " ".join(run[i : i + 2] for i in range(max(1, len(run) - 1))) + " "

    return HAN_RUN.sub(bigrams, text)


def cjk_lower(text: str) -> str:
    """``text`` lower-cased, then :func:`cjk_words`: a TF-IDF preprocessor (a module-level function, so a
    fitted vectorizer pickles) that is scikit-learn's default for every other script.

    >>> cjk_lower("Budget CUTS"), cjk_lower("工作压力")
    ('budget cuts', ' 工作 作压 压力 ')
    """
    return cjk_words(text.lower())
