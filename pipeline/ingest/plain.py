"""Plain-text and Markdown transcripts (``.txt``, ``.md``).

The stored text is exactly the decoded file (see :mod:`pipeline.ingest.decode`); turns are spans into
it. :func:`parse_plain_text` picks the first layout that fits:

1. **Otter.ai export** (format ``"otter"``): header lines ``Name  mm:ss`` or ``Name  h:mm:ss`` (one or
   more spaces before the time, nothing after it), each followed by the turn's text up to the next
   header. Needs at least 2 headers with non-decreasing times, or a single header on the first
   non-blank line with text right under it. A closing ``Transcribed by https://otter.ai`` line belongs
   to no turn.
2. **Labelled** ``Name: text`` turns (see :mod:`pipeline.ingest.labels`, including ``**Name:**``):
   a line opening with a label starts a turn; lines without one continue it. Used when
   :func:`~pipeline.ingest.labels.labels_recur` holds for the labels over the non-blank lines.
3. **Paragraphs**: each blank-line separated block is one turn of unknown speaker ``""``.

In layouts 1 and 2, text before the first header or label (a title, a note) becomes one turn of
speaker ``""`` per paragraph.

Lines that are not speech belong to no turn (they stay in the stored text): a speaker label with no
words after it (``Interviewer:`` alone), and in ``.md`` files Markdown headings (``# Interview 5``,
up to 3 spaces and 1 to 6 ``#`` then a space or the line's end). A heading ends the turn before it;
unlabelled lines after it, up to the next label, are paragraphs of speaker ``""``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.domain import ParsedTranscript, Turn
from pipeline.ingest.decode import decode_bytes
from pipeline.ingest.labels import (
    NAME_PATTERN,
    is_bare_label,
    labels_recur,
    match_label,
    parse_clock,
    strip_span,
    valid_name,
)

OTTER_HEADER_RE = re.compile(
    rf"[^\S\n]*(?P<name>{NAME_PATTERN})[^\S\n]+(?P<ts>(?:\d{{1,2}}:)?\d{{1,2}}:\d{{2}})[^\S\n]*"
)
OTTER_FOOTER_RE = re.compile(r"\s*Transcribed by https?://otter\.ai\s*", re.IGNORECASE)
MD_HEADING_RE = re.compile(r" {0,3}#{1,6}(?:[ \t].*)?")

Line = tuple[int, int]  # (start, end) offsets of a line in the text, without its "\n"


def _lines(text: str) -> list[Line]:
    out: list[Line] = []
    pos = 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def _not_speech(text: str, lines: list[Line], fmt: str) -> set[int]:
    """Indices of the lines that belong to no turn: bare labels, and headings in Markdown."""
    out = set()
    for i, (a, b) in enumerate(lines):
        line = text[a:b]
        if (fmt == "md" and MD_HEADING_RE.fullmatch(line)) or is_bare_label(line):
            out.add(i)
    return out


def _paragraph_turns(
    text: str, lines: list[Line], first: int, stop: int, skip: set[int] | frozenset[int] = frozenset()
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


def _otter_headers(text: str, lines: list[Line]) -> list[tuple[int, str, float]] | None:
    """``(line index, speaker, seconds)`` of each Otter header, or ``None`` when the layout is not Otter."""
    headers: list[tuple[int, str, float]] = []
    for i, (a, b) in enumerate(lines):
        m = OTTER_HEADER_RE.fullmatch(text, a, b)
        if m and valid_name(m["name"].strip()):
            headers.append((i, m["name"].strip(), parse_clock(m["ts"])))
    if len(headers) >= 2:
        times = [h[2] for h in headers]
        return headers if all(x <= y for x, y in zip(times, times[1:], strict=False)) else None
    if len(headers) == 1:
        i = headers[0][0]
        first_content = next(j for j, (a, b) in enumerate(lines) if text[a:b].strip())
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if i == first_content and nxt is not None and text[nxt[0] : nxt[1]].strip():
            return headers
    return None


def _parse_otter(
    text: str, lines: list[Line], headers: list[tuple[int, str, float]], skip: set[int]
) -> list[Turn]:
    stops = [h[0] for h in headers[1:]]
    footer = next((i for i, (a, b) in enumerate(lines) if OTTER_FOOTER_RE.fullmatch(text, a, b)), None)
    stops.append(footer if footer is not None and footer > headers[-1][0] else len(lines))
    turns = _paragraph_turns(text, lines, 0, headers[0][0], skip)
    for (i, speaker, seconds), stop in zip(headers, stops, strict=True):
        if i + 1 >= len(lines) or stop <= i + 1:
            continue
        span = strip_span(text, lines[i + 1][0], lines[stop - 1][1])
        if span:
            turns.append(Turn(speaker, *span, timestamp=seconds))
    return turns


def _parse_labelled(text: str, lines: list[Line], headings: set[int], skip: set[int]) -> list[Turn] | None:
    found = [(i, lab) for i, (a, b) in enumerate(lines) if (lab := match_label(text[a:b]))]
    n_content = sum(1 for i, (a, b) in enumerate(lines) if i not in headings and text[a:b].strip())
    if not labels_recur([lab.speaker for _, lab in found], n_content):
        return None
    labels = dict(found)
    marks = sorted([*labels, *headings])  # a label or a heading ends what came before it
    turns = _paragraph_turns(text, lines, 0, marks[0], skip)
    for i, stop in zip(marks, [*marks[1:], len(lines)], strict=True):
        lab = labels.get(i)
        if lab is None:  # a heading: what follows it up to the next mark has no speaker
            turns.extend(_paragraph_turns(text, lines, i + 1, stop, skip))
        elif span := strip_span(text, lines[i][0] + lab.end, lines[stop - 1][1]):
            turns.append(Turn(lab.speaker, *span, timestamp=lab.timestamp))
    return turns


def parse_plain_text(text: str, fmt: str = "txt") -> ParsedTranscript:
    """Find the turns of a plain-text transcript whose exact text is ``text``.

    Parameters
    ----------
    text : str
        The decoded text (newlines already folded to ``\\n``); stored unchanged.
    fmt : str
        Format reported for the labelled and paragraph layouts (``"txt"`` or ``"md"``); the Otter
        layout always reports ``"otter"``.

    Returns
    -------
    ParsedTranscript
        ``text`` unchanged and its turns in order; roles are ``"unknown"`` (see
        :func:`pipeline.ingest.roles.assign_roles`).

    Examples
    --------
    >>> p = parse_plain_text("Interviewer: Why?\\nAnna: Because.\\nIt was late.\\nInterviewer: Ok.")
    >>> [(t.speaker, p.text[t.start:t.end]) for t in p.turns]
    [('Interviewer', 'Why?'), ('Anna', 'Because.\\nIt was late.'), ('Interviewer', 'Ok.')]
    >>> p = parse_plain_text("Anna  0:03\\nHello there.\\n\\nBen  1:02:00\\nHi.\\n")
    >>> p.format, [(t.speaker, t.timestamp, p.text[t.start:t.end]) for t in p.turns]
    ('otter', [('Anna', 3.0, 'Hello there.'), ('Ben', 3720.0, 'Hi.')])
    """
    lines = _lines(text)
    skip = _not_speech(text, lines, fmt)
    headings = {i for i in skip if match_label(text[lines[i][0] : lines[i][1]]) is None}
    headers = _otter_headers(text, lines)
    if headers is not None:
        return ParsedTranscript(text, tuple(_parse_otter(text, lines, headers, skip)), "otter")
    labelled = _parse_labelled(text, lines, headings, skip)
    if labelled is not None:
        return ParsedTranscript(text, tuple(labelled), fmt)
    return ParsedTranscript(text, tuple(_paragraph_turns(text, lines, 0, len(lines), skip)), fmt)


def read_txt(path: Path) -> ParsedTranscript:
    """Read a ``.txt`` transcript (see :func:`parse_plain_text`)."""
    return parse_plain_text(decode_bytes(path.read_bytes(), path), "txt")


def read_md(path: Path) -> ParsedTranscript:
    """Read a ``.md`` transcript (see :func:`parse_plain_text`); Markdown is kept as written."""
    return parse_plain_text(decode_bytes(path.read_bytes(), path), "md")
