"""Plain-text and Markdown transcripts (``.txt``, ``.md``).

The stored text is exactly the decoded file (see :mod:`pipeline.ingest.decode`); turns are spans into
it. :func:`parse_plain_text` picks the first layout that fits:

1. **Speaker headers** (format ``"otter"``, see :mod:`pipeline.ingest.headers`): header lines holding
   a name and a clock, ``Name  mm:ss`` (Otter.ai), ``Name [00:00:01]`` or ``Name (h:mm:ss)``, each
   followed by the turn's text up to the next header. Needs at least 2 headers with non-decreasing
   times, or a single header on the first non-blank line with text right under it. A closing
   ``Transcribed by https://otter.ai`` line belongs to no turn.
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
from pipeline.ingest.headers import Line, find_headers, header_turns, paragraph_turns, text_lines
from pipeline.ingest.labels import is_bare_label, labels_recur, match_label, strip_span

MD_HEADING_RE = re.compile(r" {0,3}#{1,6}(?:[ \t].*)?")


def _not_speech(text: str, lines: list[Line], fmt: str) -> set[int]:
    """Indices of the lines that belong to no turn: bare labels, and headings in Markdown."""
    out = set()
    for i, (a, b) in enumerate(lines):
        line = text[a:b]
        if (fmt == "md" and MD_HEADING_RE.fullmatch(line)) or is_bare_label(line):
            out.add(i)
    return out


def _parse_labelled(text: str, lines: list[Line], headings: set[int], skip: set[int]) -> list[Turn] | None:
    found = [(i, lab) for i, (a, b) in enumerate(lines) if (lab := match_label(text[a:b]))]
    n_content = sum(1 for i, (a, b) in enumerate(lines) if i not in headings and text[a:b].strip())
    if not labels_recur([lab.speaker for _, lab in found], n_content):
        return None
    labels = dict(found)
    marks = sorted([*labels, *headings])  # a label or a heading ends what came before it
    turns = paragraph_turns(text, lines, 0, marks[0], skip)
    for i, stop in zip(marks, [*marks[1:], len(lines)], strict=True):
        lab = labels.get(i)
        if lab is None:  # a heading: what follows it up to the next mark has no speaker
            turns.extend(paragraph_turns(text, lines, i + 1, stop, skip))
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
    lines = text_lines(text)
    skip = _not_speech(text, lines, fmt)
    headings = {i for i in skip if match_label(text[lines[i][0] : lines[i][1]]) is None}
    headers = find_headers(text, lines)
    if headers is not None:
        return ParsedTranscript(text, tuple(header_turns(text, lines, headers, skip)), "otter")
    labelled = _parse_labelled(text, lines, headings, skip)
    if labelled is not None:
        return ParsedTranscript(text, tuple(labelled), fmt)
    return ParsedTranscript(text, tuple(paragraph_turns(text, lines, 0, len(lines), skip)), fmt)


def read_txt(path: Path) -> ParsedTranscript:
    """Read a ``.txt`` transcript (see :func:`parse_plain_text`)."""
    return parse_plain_text(decode_bytes(path.read_bytes(), path), "txt")


def read_md(path: Path) -> ParsedTranscript:
    """Read a ``.md`` transcript (see :func:`parse_plain_text`); Markdown is kept as written."""
    return parse_plain_text(decode_bytes(path.read_bytes(), path), "md")
