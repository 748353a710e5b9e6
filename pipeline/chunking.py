"""Cut a long stretch of text into chunks at safe boundaries, keeping exact offsets.

Used by :mod:`pipeline.segment` so that a turn longer than spaCy's ``max_length`` (a pasted export with
no line breaks) is split into sentences chunk by chunk, in bounded memory. A chunk ends, by preference,
after a paragraph break, a line break, a sentence end followed by a space, or a space, found in the
second half of the window; only text without any of these is cut hard at the chunk size.
"""

from __future__ import annotations

_SENTENCE_ENDS = (".", "!", "?", "؟", "۔", "…", "。")


def _cut(text: str, lo: int, hi: int) -> int:
    """The best end (exclusive) for a chunk that must end in ``(lo, hi]``."""
    for sep in ("\n\n", "\n"):
        pos = text.rfind(sep, lo, hi)
        if pos != -1:
            return pos + len(sep)
    best = max(text.rfind(p + " ", lo, hi) for p in _SENTENCE_ENDS)
    if best != -1:
        return best + 2
    for pos in range(hi - 1, lo - 1, -1):
        if text[pos].isspace():
            return pos + 1
    return hi


def chunk_spans(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Contiguous ``(a, b)`` spans covering ``text[start:end]``, each at most ``size`` characters.

    Parameters
    ----------
    text : the whole text (offsets are absolute).
    start, end : the stretch to cut.
    size : the largest chunk, at least 2.

    Examples
    --------
    >>> chunk_spans("aaa bbb. ccc ddd", 0, 16, 10)
    [(0, 9), (9, 16)]
    >>> chunk_spans("abcdefghij", 0, 10, 4)
    [(0, 4), (4, 8), (8, 10)]
    >>> chunk_spans("short", 0, 5, 100)
    [(0, 5)]
    """
    if size < 2:
        raise ValueError(f"chunk size {size} must be at least 2")
    spans: list[tuple[int, int]] = []
    a = start
    while end - a > size:
        b = _cut(text, a + size // 2, a + size)
        spans.append((a, b))
        a = b
    if end > a or not spans:
        spans.append((a, end))
    return spans
