"""Read transcript files into exact text and speaker turns.

One reader per format, chosen by file suffix through :data:`READERS`; see each module for its layout
rules: :mod:`~pipeline.ingest.plain` (``.txt``, ``.md``, incl. Otter.ai exports),
:mod:`~pipeline.ingest.word` (``.docx``), :mod:`~pipeline.ingest.odt` (``.odt``),
:mod:`~pipeline.ingest.rtf` (``.rtf``), :mod:`~pipeline.ingest.pdf` (``.pdf``, its text layer), :mod:`~pipeline.ingest.subtitles` (``.vtt``, ``.srt``),
:mod:`~pipeline.ingest.tables` (``.csv``, ``.tsv``, ``.xlsx``: one row per utterance).
Roles are assigned separately (:func:`~pipeline.ingest.roles.assign_roles`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.domain import ParsedTranscript
from pipeline.errors import InputError
from pipeline.ingest.decode import decode_bytes
from pipeline.ingest.odt import read_odt
from pipeline.ingest.pdf import read_pdf
from pipeline.ingest.plain import read_md, read_txt
from pipeline.ingest.rtf import read_rtf
from pipeline.ingest.subtitles import read_srt, read_vtt
from pipeline.ingest.tables import TABLE_SUFFIXES, is_transcript_table, read_csv, read_tsv, read_xlsx
from pipeline.ingest.word import read_docx
from pipeline.limits import TRANSCRIPT_CHARS, check_file_size, check_value

__all__ = ["READERS", "SUPPORTED_SUFFIXES", "decode_bytes", "is_transcript", "read_transcript"]

READERS: dict[str, Callable[[Path], ParsedTranscript]] = {
    ".txt": read_txt,
    ".md": read_md,
    ".docx": read_docx,
    ".odt": read_odt,
    ".rtf": read_rtf,
    ".pdf": read_pdf,
    ".vtt": read_vtt,
    ".srt": read_srt,
    ".csv": read_csv,
    ".tsv": read_tsv,
    ".xlsx": read_xlsx,
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(READERS))


def is_transcript(path: Path) -> bool:
    """Whether a file found in a folder is a transcript to read: one of :data:`SUPPORTED_SUFFIXES`, and
    for a table (``.csv``, ``.tsv``, ``.xlsx``) one whose header has a text column
    (:func:`~pipeline.ingest.tables.is_transcript_table`), so a codings or metadata CSV lying beside
    the transcripts is skipped. A file named on its own is read whatever this says."""
    suffix = path.suffix.lower()
    if suffix not in READERS:
        return False
    return suffix not in TABLE_SUFFIXES or is_transcript_table(path)


def read_transcript(path: Path) -> ParsedTranscript:
    """Read one transcript file, choosing the reader by its suffix (case-insensitive).

    Parameters
    ----------
    path : Path
        A file of one of :data:`SUPPORTED_SUFFIXES` (``.txt``, ``.md``, ``.docx``, ``.vtt``, ``.csv``, ...).

    Returns
    -------
    ParsedTranscript
        The text as stored and its turns (roles ``"unknown"``); ``text[turn.start:turn.end]`` is what
        the speaker said.

    Raises
    ------
    InputError
        Unknown suffix, missing or unreadable file, undecodable or empty content, or a file the
        format's reader rejects; the message names the file.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    check_file_size(path)
    try:
        parsed = reader(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not parsed.turns:
        raise InputError(
            f"{path}: no text found (speaker labels, headings and blank lines are not speech); "
            "check that you picked the right file"
        )
    check_value(path, TRANSCRIPT_CHARS, len(parsed.text))
    return parsed
