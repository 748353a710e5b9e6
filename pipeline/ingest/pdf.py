"""PDF transcripts (``.pdf``, text read with pypdf).

Only a PDF's text layer is read (what a PDF viewer lets you select and copy): a scanned transcript
without one is refused (run OCR, or export the transcript as ``.docx``/``.txt``). Each page's text is
extracted in reading order, its lines stripped of white space at their ends; a first or last line that is
only a page number (``3``, ``- 3 -``, ``Page 3``, ``Page 3 of 12``, ``3/12``) is dropped, so it does not
land inside a quote. Pages are joined by a blank line.

Stored text and turns: that text, read by the rules of ``.txt`` (:func:`~pipeline.ingest.plain.
parse_plain_text`: speaker headers, ``Name:`` labels, otherwise one turn per blank-line paragraph).
A PDF's layout is not its text: words can come out in another order than they read (columns,
right-to-left scripts), so check the source with ``qualflow segments`` after ingesting, and prefer
the transcript's ``.docx``/``.txt`` when there is one.

A file that is not a PDF, is broken, is encrypted with a password, or has no text at all raises
:class:`~pipeline.errors.InputError` naming the file.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from pipeline.domain import ParsedTranscript
from pipeline.errors import InputError
from pipeline.fileio import fold_newlines
from pipeline.ingest.plain import parse_plain_text
from pipeline.limits import check_file_size

HINT = "not a readable .pdf (truncated or corrupt?); export the transcript as .pdf, .docx or .txt again"
NO_TEXT = "the PDF has no text layer (a scan?); run OCR on it or export the transcript as .docx/.txt"
PAGE_NUMBER_RE = re.compile(r"(?i)(?:page\s+)?[-–—\s]*\d{1,5}(?:\s*(?:of|/)\s*\d{1,5})?[-–—\s]*")


def page_lines(text: str) -> list[str]:
    """A page's lines, stripped, without a page number as first or last non-empty line.

    >>> page_lines("  Page 2 of 9\\nInt: Why?  \\nP1: Hm.\\n- 2 -\\n")
    ['Int: Why?', 'P1: Hm.']
    """
    lines = [line.strip() for line in fold_newlines(text).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if lines and PAGE_NUMBER_RE.fullmatch(lines[-1]):
        lines.pop()
    if lines and PAGE_NUMBER_RE.fullmatch(lines[0]):
        lines.pop(0)
    return lines


def pdf_text(pages: list[str]) -> str:
    """The stored text of a PDF from its pages' extracted text (see the module docstring).

    >>> pdf_text(["Int: Why?\\nP1: Because\\n1", "", "2\\nit was late."])
    'Int: Why?\\nP1: Because\\n\\nit was late.'
    """
    return "\n\n".join("\n".join(lines) for page in pages if (lines := page_lines(page)))


def read_pdf(path: Path) -> ParsedTranscript:
    """Read a ``.pdf`` transcript (see the module docstring for the rules)."""
    check_file_size(path)
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise InputError(f"{path}: not a PDF file (no '%PDF-' header); {HINT.split('; ')[1]}")
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    pypdf_log = logging.getLogger("pypdf")
    level, propagate = pypdf_log.level, pypdf_log.propagate
    pypdf_log.setLevel(logging.CRITICAL + 1)  # its warnings about a damaged file must not reach stderr
    pypdf_log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(path)
            if reader.is_encrypted and not reader.decrypt(""):
                raise FileNotDecryptedError("a password is needed")
            pages = [page.extract_text() or "" for page in reader.pages]
    except (FileNotDecryptedError, DependencyError):
        raise InputError(
            f"{path}: the PDF is encrypted; save it without a password (or export the transcript as .docx/.txt)"
        ) from None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001  pypdf on a damaged file raises many types; never a traceback
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"{path}: {HINT} ({type(exc).__name__}: {reason})") from None
    finally:
        pypdf_log.setLevel(level)
        pypdf_log.propagate = propagate
    text = pdf_text(pages)
    if not text.strip():
        raise InputError(f"{path}: {NO_TEXT}")
    return parse_plain_text(text, "pdf")
