"""Subtitle transcripts: WebVTT (``.vtt``) and SubRip (``.srt``), parsed here (no dependency).

Both are read as blank-line separated blocks. A cue is an optional identifier line, a timing line
``start --> end`` (``hh:mm:ss.ttt`` or ``mm:ss.ttt``; ``,`` and ``.`` both accepted as decimal mark;
WebVTT cue settings after the end time are ignored) and one or more text lines. In WebVTT, the
``WEBVTT`` header block and ``NOTE``, ``STYLE`` and ``REGION`` blocks are skipped.

Speakers: a voice tag ``<v Name>`` (``<v.class Name>``) names the speaker; otherwise a ``Name:`` prefix
does, when such prefixes recur across cues (:func:`~pipeline.ingest.labels.labels_recur`); a cue with
neither has the unknown speaker ``""``. Other tags (``<c>``, ``<i>``, ``<b>``, ``<font>``, timestamps,
``{\\an8}``) are removed and HTML entities decoded; the cue's lines are joined by one space.

Consecutive cues of the same speaker merge into ONE turn whose ``timestamp`` is the first cue's start
(seconds). The stored text has one line per turn, ``"Name: words"`` (just ``"words"`` for speaker
``""``), joined by ``"\\n"``; each turn's ``start``/``end`` cover the words only.

Two cues run together (no blank line between them) are split at the second timing line. A block
without a valid timing line raises :class:`~pipeline.errors.InputError` naming the file and
the line number.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.domain import ParsedTranscript, Turn
from pipeline.errors import InputError
from pipeline.ingest.decode import decode_bytes
from pipeline.ingest.labels import is_bare_label, labels_recur, match_label

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})"
TIMING_RE = re.compile(rf"\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?")
VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?(?:\s+([^>]*))?>")
TAG_RE = re.compile(r"<[^>]*>|\{\\[^}]*\}")


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: start time (seconds), speaker (``None`` when the cue names none) and words."""

    start: float
    speaker: str | None
    words: str


def _seconds(groups: tuple[str | None, ...]) -> float:
    h, m, s, frac = groups
    return int(h or 0) * 3600 + int(m or 0) * 60 + int(s or 0) + int(frac or 0) / 10 ** len(frac or "0")


def _clean(raw: str) -> str:
    return " ".join(html.unescape(TAG_RE.sub("", raw)).split())


def _voiced_pieces(payload: str) -> list[tuple[str | None, str]]:
    """Split cue text on voice tags: ``[(voice or None, words), ...]`` (words cleaned, maybe empty)."""
    pieces: list[tuple[str | None, str]] = []
    voice: str | None = None
    pos = 0
    for m in VOICE_RE.finditer(payload):
        pieces.append((voice, _clean(payload[pos : m.start()])))
        voice = " ".join((m.group(1) or "").split()) or None
        pos = m.end()
    pieces.append((voice, _clean(payload[pos:])))
    return [(v, w) for v, w in pieces if w]


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks as ``(1-based line number of the first line, lines)``."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    first = 0
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not current:
                first = n
            current.append(line)
        elif current:
            blocks.append((first, current))
            current = []
    if current:
        blocks.append((first, current))
    return blocks


def _timing(name: str, lineno: int, line: str) -> float:
    m = TIMING_RE.fullmatch(line)
    if m is None:
        raise InputError(
            f"{name} line {lineno}: bad cue timing {line.strip()!r}; expected 'hh:mm:ss.ttt --> hh:mm:ss.ttt'"
        )
    start, end = _seconds(m.groups()[:4]), _seconds(m.groups()[4:])
    if end < start:
        raise InputError(f"{name} line {lineno}: cue ends before it starts ({line.strip()!r})")
    return start


def _split_run_on(blocks: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """Split blocks where a missing blank line ran two cues together (a timing line inside the text).

    The line before such a timing line, when it is all digits, is the next cue's identifier.
    """
    out: list[tuple[int, list[str]]] = []
    for first, lines in blocks:
        start = 0
        for k in range(2, len(lines)):
            if TIMING_RE.fullmatch(lines[k]) and k - 1 > start and "-->" not in lines[k - 1]:
                cut = k - 1 if lines[k - 1].strip().isdigit() and k - 2 > start else k
                if cut - start >= 2:
                    out.append((first + start, lines[start:cut]))
                    start = cut
        out.append((first + start, lines[start:]))
    return out


def _cues(name: str, blocks: list[tuple[int, list[str]]]) -> list[Cue]:
    raw: list[tuple[float, str]] = []
    for first, lines in _split_run_on(blocks):
        if "-->" in lines[0]:
            t, body = 0, lines[1:]
        elif len(lines) > 1 and "-->" in lines[1]:
            t, body = 1, lines[2:]
        else:
            raise InputError(
                f"{name} line {first}: expected a cue (an optional identifier line, then "
                f"'hh:mm:ss.ttt --> hh:mm:ss.ttt'), found {lines[0].strip()[:40]!r}"
            )
        raw.append((_timing(name, first + t, lines[t]), "\n".join(body)))
    cues: list[Cue] = []
    for start, payload in raw:
        for voice, words in _voiced_pieces(payload):
            cues.append(Cue(start, voice, words))
    # "Name:" prefixes only count when they recur (prose cues like "Note: ..." stay words)
    unvoiced = [c for c in cues if c.speaker is None]
    labels = [lab for c in unvoiced if (lab := match_label(c.words))]
    use_labels = labels_recur([lab.speaker for lab in labels], len(unvoiced))
    out: list[Cue] = []
    for c in cues:
        if c.speaker is None and is_bare_label(c.words):  # "Interviewer:" alone is not speech
            continue
        lab = match_label(c.words) if c.speaker is None and use_labels else None
        if lab is not None and c.words[lab.end :].strip():
            out.append(Cue(c.start, lab.speaker, c.words[lab.end :].strip()))
        else:
            out.append(Cue(c.start, c.speaker or "", c.words))
    return out


def build_transcript(cues: list[Cue], fmt: str) -> ParsedTranscript:
    """Merge consecutive cues of one speaker and lay the turns out as ``"Name: words"`` lines.

    Parameters
    ----------
    cues : list of Cue, length n_cues
        Cues in file order; ``speaker`` ``None`` is treated as ``""``.
    fmt : str
        ``"vtt"`` or ``"srt"``.

    Examples
    --------
    >>> p = build_transcript([Cue(0.0, "Ann", "Hi."), Cue(1.5, "Ann", "So?"), Cue(3.0, "", "Hm.")], "vtt")
    >>> p.text
    'Ann: Hi. So?\\nHm.'
    >>> [(t.speaker, t.timestamp, p.text[t.start:t.end]) for t in p.turns]
    [('Ann', 0.0, 'Hi. So?'), ('', 3.0, 'Hm.')]
    """
    merged: list[tuple[str, float, list[str]]] = []
    for c in cues:
        speaker = c.speaker or ""
        if merged and merged[-1][0] == speaker:
            merged[-1][2].append(c.words)
        else:
            merged.append((speaker, c.start, [c.words]))
    parts: list[str] = []
    turns: list[Turn] = []
    pos = 0
    for speaker, start, words_list in merged:
        prefix = f"{speaker}: " if speaker else ""
        words = " ".join(words_list)
        turns.append(Turn(speaker, pos + len(prefix), pos + len(prefix) + len(words), timestamp=start))
        parts.append(prefix + words)
        pos += len(prefix) + len(words) + 1
    return ParsedTranscript("\n".join(parts), tuple(turns), fmt)


def parse_webvtt(text: str, name: str = "<vtt>") -> ParsedTranscript:
    """Parse WebVTT text (newlines folded) into a transcript; ``name`` is used in error messages.

    Examples
    --------
    >>> vtt = "WEBVTT\\n\\nNOTE hi\\n\\n1\\n00:01.000 --> 00:02.000\\n<v Ann>Hello <i>you</i></v>\\n"
    >>> p = parse_webvtt(vtt)
    >>> p.text, p.turns[0].timestamp
    ('Ann: Hello you', 1.0)
    """
    blocks = _blocks(text)
    if not blocks or not re.fullmatch(r"WEBVTT(?:[ \t].*)?", blocks[0][1][0].strip()):
        lineno = blocks[0][0] if blocks else 1
        raise InputError(f"{name} line {lineno}: a WebVTT file must start with 'WEBVTT'")
    body = [(n, lines) for n, lines in blocks[1:] if not re.match(r"(?:NOTE|STYLE|REGION)(?:\s|$)", lines[0])]
    return _finish(_cues(name, body), "vtt", name)


def parse_srt(text: str, name: str = "<srt>") -> ParsedTranscript:
    """Parse SubRip text (newlines folded) into a transcript; ``name`` is used in error messages.

    Examples
    --------
    >>> srt = "1\\n00:00:01,000 --> 00:00:02,500\\nBen: Yes.\\n\\n2\\n00:00:03,000 --> 00:00:04,000\\nBen: No."
    >>> p = parse_srt(srt)
    >>> p.text, p.turns[0].speaker
    ('Ben: Yes. No.', 'Ben')
    """
    return _finish(_cues(name, _blocks(text)), "srt", name)


def _finish(cues: list[Cue], fmt: str, name: str) -> ParsedTranscript:
    if not cues:
        raise InputError(f"{name}: no subtitle cue with text; check that you picked the right file")
    return build_transcript(cues, fmt)


def read_vtt(path: Path) -> ParsedTranscript:
    """Read a ``.vtt`` transcript (see :func:`parse_webvtt`)."""
    return parse_webvtt(decode_bytes(path.read_bytes(), path), str(path))


def read_srt(path: Path) -> ParsedTranscript:
    """Read a ``.srt`` transcript (see :func:`parse_srt`)."""
    return parse_srt(decode_bytes(path.read_bytes(), path), str(path))
