"""Where a span of one version of a text is in the next: character offsets through a diff alignment.

Codings are offsets into a source's text. When a transcript is edited (a typo fixed) and ingested again,
:class:`SpanMap` carries each coded span to the new text if the coded characters are there unchanged:
the span must lie inside one run of characters the two texts share, as aligned by :mod:`difflib`. The
alignment is made in steps so that a long interview stays fast: lines first (``SequenceMatcher``
over whole lines), then characters inside each run of changed lines (a long run, as when every line
was edited, by words first, then characters between them). Every run it
reports is equal text, so a mapped span always has exactly the old characters.
"""

from __future__ import annotations

import bisect
import re
from difflib import SequenceMatcher

Block = tuple[int, int, int]  # (start in old, start in new, length): old[a:a+n] == new[b:b+n]

# a changed region longer than this (in either text) is aligned by words first; below it, by characters
# (difflib's exact alignment is quadratic in the region's length)
EXACT_REGION_CHARS = 1_000
TOKEN_RE = re.compile(r"\w+|\s+|[^\w\s]")


def _line_starts(text: str) -> tuple[list[str], list[int]]:
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return lines, starts


def _char_blocks(old: str, new: str, a0: int, b0: int, *, by_words: bool = True) -> list[Block]:
    """Equal runs of ``old`` and ``new`` (a changed region), shifted by ``a0``/``b0``.

    A long region is aligned by words (``by_words``) or, between words already aligned, only by its
    common start and end."""
    # the common prefix and suffix first: a fixed typo leaves little in between
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[len(old) - 1 - s] == new[len(new) - 1 - s]:
        s += 1
    out: list[Block] = [(a0, b0, p)] if p else []
    mid_old, mid_new = old[p : len(old) - s], new[p : len(new) - s]
    if mid_old and mid_new and max(len(mid_old), len(mid_new)) > EXACT_REGION_CHARS:
        if by_words:
            out += _token_blocks(mid_old, mid_new, a0 + p, b0 + p)
    elif mid_old and mid_new:
        sm = SequenceMatcher(None, mid_old, mid_new, autojunk=False)
        out += [(a0 + p + a, b0 + p + b, n) for a, b, n in sm.get_matching_blocks() if n]
    if s:
        out.append((a0 + len(old) - s, b0 + len(new) - s, s))
    return out


def _token_blocks(old: str, new: str, a0: int, b0: int) -> list[Block]:
    """Equal runs of a long changed region (say every line of a file edited): words, spaces and
    punctuation aligned first (difflib's heuristic for popular tokens on), then characters between."""
    old_tokens, new_tokens = TOKEN_RE.findall(old), TOKEN_RE.findall(new)
    a_at, b_at = [0], [0]
    for t in old_tokens:
        a_at.append(a_at[-1] + len(t))
    for t in new_tokens:
        b_at.append(b_at[-1] + len(t))
    out: list[Block] = []
    i = j = 0  # the ends of the previous run, in tokens
    for ti, tj, n in SequenceMatcher(None, old_tokens, new_tokens, autojunk=True).get_matching_blocks():
        gap_old, gap_new = old[a_at[i] : a_at[ti]], new[b_at[j] : b_at[tj]]
        if gap_old and gap_new:
            out += _char_blocks(gap_old, gap_new, a0 + a_at[i], b0 + b_at[j], by_words=False)
        if n:
            out.append((a0 + a_at[ti], b0 + b_at[tj], a_at[ti + n] - a_at[ti]))
        i, j = ti + n, tj + n
    return out


def aligned_blocks(old: str, new: str) -> list[Block]:
    """The runs of characters ``old`` and ``new`` share, in order, adjacent runs merged.

    Examples
    --------
    >>> aligned_blocks("We had no staf.\\nThe end.", "We had no staff.\\nThe end.")
    [(0, 0, 14), (14, 15, 10)]
    >>> aligned_blocks("abc", "abc")
    [(0, 0, 3)]
    """
    old_lines, a_at = _line_starts(old)
    new_lines, b_at = _line_starts(new)
    blocks: list[Block] = []
    sm = SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            blocks.append((a_at[i1], b_at[j1], a_at[i2] - a_at[i1]))
        elif tag == "replace":
            blocks += _char_blocks(old[a_at[i1] : a_at[i2]], new[b_at[j1] : b_at[j2]], a_at[i1], b_at[j1])
    merged: list[Block] = []
    for a, b, n in blocks:
        if merged and merged[-1][0] + merged[-1][2] == a and merged[-1][1] + merged[-1][2] == b:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + n)
        elif n:
            merged.append((a, b, n))
    return merged


class SpanMap:
    """Spans of ``old`` carried to ``new`` through :func:`aligned_blocks`.

    Examples
    --------
    >>> m = SpanMap("Int: Why?\\nAnn: The budget was cut.", "Int: Why so?\\nAnn: The budget was cut!")
    >>> m.map(15, 33), m.map(15, 34), m.map(5, 9)  # "The budget was cut" kept; its "." and "Why?" not
    ((18, 36), None, None)
    """

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self.blocks = aligned_blocks(old, new)
        self._starts = [a for a, _, _ in self.blocks]

    def map(self, start: int, end: int) -> tuple[int, int] | None:
        """``(start, end)`` in the new text when ``old[start:end]`` is there unchanged, else ``None``.

        "Unchanged" means the whole span lies in one shared run: an edit inside it, or text inserted
        into it, leaves it where it was. Edits before it shift it; edits after it leave it alone.
        """
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0 or start >= end:
            return None
        a, b, n = self.blocks[i]
        if end > a + n:
            return None
        out = (start - a + b, end - a + b)
        assert self.new[out[0] : out[1]] == self.old[start:end]
        return out


SHINGLE_WORDS = 5
"""Words per shingle of :func:`shared_shingles`: two unrelated interviews share many word pairs and
triples ("I don't know"), seldom five words in a row."""


def shared_shingles(old: str, new: str, n: int = SHINGLE_WORDS) -> float:
    """The share of runs of ``n`` words (case-folded) two texts have in common, over the larger number
    of runs: near 1 for an edit of the same text, near 0 for another text. Linear in the texts'
    length (a set of hashes), where a character alignment (:func:`aligned_blocks`) grows much faster
    (minutes for two unrelated 200,000-character transcripts).

    Examples
    --------
    >>> old = "Ann: There were never enough nurses on the night shift. We had no staf at all."
    >>> round(shared_shingles(old, old.replace("staf", "staff")), 2)
    0.75
    >>> shared_shingles("Int: How was the ward?\\nAnn: Busy.", "Int: Where did you train?\\nBo: Leeds.")
    0.0
    >>> shared_shingles("", ""), shared_shingles("a b", "a b")
    (1.0, 1.0)
    """

    def runs(text: str) -> set[int]:
        words = text.casefold().split()
        if len(words) < n:
            return {hash(tuple(words))}
        return {hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)}

    a, b = runs(old), runs(new)
    return len(a & b) / max(len(a), len(b))
