"""The speaker-header layout, shared by ``.txt``/``.md`` (:mod:`pipeline.ingest.plain`) and ``.docx``
(:mod:`pipeline.ingest.word`): a line holding only a speaker's name and a clock time, with the turn's
words on the lines under it, up to the next header.

Otter.ai (``.txt`` and ``.docx`` exports) and Microsoft Teams ("Download as .docx") write
``Jane Doe   0:03``; other transcription services write ``Interviewer [00:00:01]`` or
``Interviewer (00:00:01)``. A header is: a name (as for speaker labels, :func:`valid_name`), then the
clock (``m:ss`` or ``h:mm:ss``, optional fraction) after one or more spaces, or in brackets or
parentheses, and nothing else on the line. In a ``.docx`` the header is its own paragraph or the first
line of the paragraph that holds the words (a line break after it); both are lines of the stored text.

A text has this layout when it has at least 2 headers whose times do not go back, or a single header
on its first non-blank line with text right under it. The header lines belong to no turn (they stay in
the stored text); the clock is the turn's timestamp. Text before the first header (a title, a date
line) is one turn of speaker ``""`` per blank-line separated paragraph, as before labels; a closing
``Transcribed by https://otter.ai`` line belongs to no turn.
"""

from __future__ import annotations

import re
from collections.abc import Set
from typing import NamedTuple

from pipeline.domain import Turn
from pipeline.ingest.labels import (
    CLOCK,
    NAME_PATTERN,
    labels_recur,
    match_label,
    parse_clock,
    strip_span,
    valid_name,
)

_HS = r"[^\S\n]"  # horizontal whitespace
HEADER_RE = re.compile(
    rf"{_HS}*(?P<name>{NAME_PATTERN})"
    rf"(?:{_HS}+(?P<ts>{CLOCK})|{_HS}*[\[(](?P<tsb>{CLOCK})[\])]){_HS}*"
)
FOOTER_RE = re.compile(r"\s*Transcribed by https?://otter\.ai\s*", re.IGNORECASE)

Line = tuple[int, int]  # (start, end) offsets of a line in the text, without its "\n"


class Header(NamedTuple):
    """A speaker header: its line's index, the speaker and the clock in seconds."""

    line: int
    speaker: str
    seconds: float


def text_lines(text: str) -> list[Line]:
    """``(start, end)`` of every line of ``text`` (split at ``\\n``, which is not included).

    >>> text_lines("ab\\n\\nc")
    [(0, 2), (3, 3), (4, 5)]
    """
    out: list[Line] = []
    pos = 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def match_header(line: str) -> tuple[str, float] | None:
    """``(speaker, seconds)`` when ``line`` is a speaker header, else ``None``.

    >>> match_header("Jane Doe   0:03"), match_header("Interviewer [00:01:02]")
    (('Jane Doe', 3.0), ('Interviewer', 62.0))
    >>> match_header("P1 (1:05)"), match_header("We met at the old cafe at 10:30"), match_header("Anna: 0:03")
    (('P1', 65.0), None, None)
    """
    m = HEADER_RE.fullmatch(line)
    if m is None or not valid_name(name := m["name"].strip()):
        return None
    return name, parse_clock(m["ts"] or m["tsb"])


def paragraph_turns(
    text: str, lines: list[Line], first: int, stop: int, skip: Set[int] = frozenset()
) -> list[Turn]:
    """One speaker-``""`` turn per blank-line separated block of ``lines[first:stop]``; lines in ``skip``
    count as blank."""
    blocks: list[tuple[int, int]] = []
    block_start: int | None = None
    block_end = 0
    for i, (a, b) in enumerate(lines[first:stop], start=first):
        if i not in skip and text[a:b].strip():
            if block_start is None:
                block_start = a
            block_end = b
        elif block_start is not None:
            blocks.append((block_start, block_end))
            block_start = None
    if block_start is not None:
        blocks.append((block_start, block_end))
    return [Turn("", *span) for a, b in blocks if (span := strip_span(text, a, b))]


def find_headers(text: str, lines: list[Line]) -> list[Header] | None:
    """The speaker headers of ``text``, or ``None`` when it does not have the header layout.

    A labelled transcript (``Name: words`` lines, :func:`labels_recur`) with at least as many labels as
    header-like lines keeps its labels: two lines such as ``Morning session (9:30)`` in it are
    headings, not speakers.

    >>> t = "Interviewer: When?\\nAnna: Early.\\nMorning session (9:30)\\nLunch 12:15\\nInterviewer: Then?\\nAnna: Home.\\n"
    >>> find_headers(t, text_lines(t)) is None
    True
    >>> t = "Anna  0:03\\nHello there.\\n\\nBen  1:02\\nHi.\\n"
    >>> [h.speaker for h in find_headers(t, text_lines(t))]
    ['Anna', 'Ben']
    """
    headers = [
        Header(i, *found) for i, (a, b) in enumerate(lines) if (found := match_header(text[a:b])) is not None
    ]
    if len(headers) >= 2:
        labels = [lab.speaker for a, b in lines if (lab := match_label(text[a:b])) is not None]
        if len(labels) >= len(headers) and labels_recur(labels, len(lines)):
            return None
        times = [h.seconds for h in headers]
        return headers if all(x <= y for x, y in zip(times, times[1:], strict=False)) else None
    if len(headers) == 1:
        i = headers[0].line
        first_content = next(j for j, (a, b) in enumerate(lines) if text[a:b].strip())
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if i == first_content and nxt is not None and text[nxt[0] : nxt[1]].strip():
            return headers
    return None


def header_turns(
    text: str, lines: list[Line], headers: list[Header], skip: Set[int] = frozenset()
) -> list[Turn]:
    """The turns of a text with the header layout (``headers`` from :func:`find_headers`): the
    preamble's paragraphs (lines in ``skip`` count as blank there), then one turn per header."""
    stops = [h.line for h in headers[1:]]
    footer = next((i for i, (a, b) in enumerate(lines) if FOOTER_RE.fullmatch(text, a, b)), None)
    stops.append(footer if footer is not None and footer > headers[-1].line else len(lines))
    turns = paragraph_turns(text, lines, 0, headers[0].line, skip)
    for (i, speaker, seconds), stop in zip(headers, stops, strict=True):
        if i + 1 >= len(lines) or stop <= i + 1:
            continue
        span = strip_span(text, lines[i + 1][0], lines[stop - 1][1])
        if span:
            turns.append(Turn(speaker, *span, timestamp=seconds))
    return turns
