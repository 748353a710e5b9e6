"""Speaker labels (``Name: text``), clock times and the spans of spoken words.

A *speaker label* opens a line (or a paragraph, or a subtitle cue): a name of 1 to 4 words and at most
40 characters, made of letters (any script), digits, spaces and ``. ' ’ ( ) - ZWNJ``, starting with a
letter or digit, followed by ``:`` and whitespace (or the end of the line). Accepted around it:

- Markdown bold, ``**Interviewer:** text`` or ``**Interviewer**: text`` (also ``__...__``);
- a clock time before the name, ``[00:01:02] Anna: text`` or ``00:01 Anna: text``, after it,
  ``Anna (00:01:02): text``, or in brackets right after the label, ``Anna: [00:01:02] text`` or
  ``**Anna:** (01:02) text``; it becomes the turn's timestamp and is not part of the spoken words.

A label with no words after it (``Interviewer:`` alone, :func:`is_bare_label`) is not speech: readers
give it no turn of its own.

Because prose also has lines like ``Note: ...``, a file only counts as a labelled transcript when
:func:`labels_recur` holds for its labels.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

MAXNAME_PATTERN_CHARS = 40
MAXNAME_PATTERN_WORDS = 4

CLOCK = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
NAME_PATTERN = r"[^\W_][\w .'’()\-\u200c\u064b-\u065f\u0670]{0,60}?"
_HS = r"[^\S\n]"  # horizontal whitespace

LABEL_RE = re.compile(
    rf"""
    {_HS}*
    (?:[\[(](?P<ts1>{CLOCK})[\])]{_HS}+ | (?P<ts1b>{CLOCK}){_HS}+)?
    (?P<open>\*\*|__)?
    (?P<name>{NAME_PATTERN})
    {_HS}*
    (?:[\[(](?P<ts2>{CLOCK})[\])]{_HS}*)?
    (?P<close1>\*\*|__)?
    {_HS}*:
    (?P<close2>\*\*|__)?
    (?(close2)|(?={_HS}|$))
    """,
    re.VERBOSE,
)
# a bracketed clock right after a label's colon: "Anna: [00:01:02] words", "**Anna:** (01:02) words"
CLOCK_AFTER_RE = re.compile(rf"{_HS}*[\[(](?P<ts>{CLOCK})[\])](?={_HS}|$)")


class Label(NamedTuple):
    """A speaker label found at the start of a line.

    ``end`` is the index in the line just after the label (the words follow, maybe after spaces).
    """

    speaker: str
    end: int
    timestamp: float | None


def parse_clock(value: str) -> float:
    """Seconds in a clock time ``[h:]mm:ss[.fff]`` (``,`` also accepted as decimal mark).

    >>> parse_clock("1:02:03.5")
    3723.5
    >>> parse_clock("12:07")
    727.0
    """
    parts = value.replace(",", ".").split(":")
    seconds = float(parts[-1])
    minutes = int(parts[-2])
    hours = int(parts[-3]) if len(parts) == 3 else 0
    return hours * 3600 + minutes * 60 + seconds


def valid_name(name: str) -> bool:
    """Whether ``name`` is short enough to be a speaker label (1-4 words, at most 40 characters).

    >>> valid_name("Dr. Anna Smith"), valid_name("The point I want to make")
    (True, False)
    """
    return 0 < len(name) <= MAXNAME_PATTERN_CHARS and 1 <= len(name.split()) <= MAXNAME_PATTERN_WORDS


def match_label(line: str) -> Label | None:
    """The speaker label opening ``line``, or ``None``.

    Parameters
    ----------
    line : str
        One line (no ``\\n``).

    Examples
    --------
    >>> match_label("Interviewer: How are you?")
    Label(speaker='Interviewer', end=12, timestamp=None)
    >>> match_label("**Mina:** Fine.")
    Label(speaker='Mina', end=9, timestamp=None)
    >>> match_label("[00:01:05] Anna Lee: yes")
    Label(speaker='Anna Lee', end=20, timestamp=65.0)
    >>> match_label("Interviewer: (00:00:05) How is it?")
    Label(speaker='Interviewer', end=23, timestamp=5.0)
    >>> match_label("We met at 10:30 that day") is None
    True
    """
    m = LABEL_RE.match(line)
    if m is None:
        return None
    opener, close1, close2 = m["open"], m["close1"], m["close2"]
    if opener is None and (close1 or close2):
        return None
    if opener is not None and not ((close1 == opener) != (close2 == opener)):
        return None
    name = m["name"].strip()
    if not valid_name(name):
        return None
    clock = m["ts1"] or m["ts1b"] or m["ts2"]
    return clock_after(line, Label(name, m.end(), parse_clock(clock) if clock else None))


def clock_after(line: str, label: Label) -> Label:
    """``label`` extended over a bracketed clock time right after it (``Anna: [00:01:02] words``).

    The clock becomes the timestamp when the label had none before its colon; either way it is not
    part of the words, so the turn starts after it.

    >>> clock_after("**Ann:** [00:00:09] I run it.", Label("Ann", 8, None))
    Label(speaker='Ann', end=19, timestamp=9.0)
    >>> clock_after("Ann: (sighs) yes", Label("Ann", 4, None))
    Label(speaker='Ann', end=4, timestamp=None)
    """
    m = CLOCK_AFTER_RE.match(line, label.end)
    if m is None:
        return label
    stamp = label.timestamp if label.timestamp is not None else parse_clock(m["ts"])
    return Label(label.speaker, m.end(), stamp)


def is_bare_label(line: str) -> bool:
    """Whether ``line`` is a speaker label with no words after it (not speech, not a turn).

    >>> is_bare_label("Interviewer:"), is_bare_label(" **Ann:** [00:01] "), is_bare_label("Ann: yes")
    (True, True, False)
    """
    label = match_label(line)
    return label is not None and not line[label.end :].strip()


def labels_recur(speakers: Sequence[str], n_units: int) -> bool:
    """Whether labels found in a file are frequent enough to read it as a ``Name: text`` transcript.

    The rule: at least 2 labels, and either one label (compared case-insensitively) is used at least
    twice, or labelled units are more than half of all units (lines, paragraphs or cues). So
    ``A: hi`` / ``B: hello`` is a transcript, while one ``Note:`` and one ``Warning:`` in ten lines of
    prose are not.

    >>> labels_recur(["Interviewer", "Anna", "interviewer"], 30)
    True
    >>> labels_recur(["Note", "Warning"], 10)
    False
    """
    if len(speakers) < 2:
        return False
    counts = Counter(s.casefold() for s in speakers)
    return max(counts.values()) >= 2 or 2 * len(speakers) > n_units


def strip_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink ``text[start:end]`` to exclude surrounding whitespace; ``None`` when nothing is left.

    >>> strip_span("  ab c \\n", 0, 8)
    (2, 6)
    """
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
