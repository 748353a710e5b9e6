"""Word transcripts (``.docx``, read with python-docx).

Stored text: the document's non-empty paragraphs in order, joined by ``"\\n\\n"`` (tables: see below).

Speaker headers come first: a document whose lines (paragraphs, or lines of a paragraph split by a line
break) have the header layout of :mod:`pipeline.ingest.headers` (``Jane Doe   0:03`` as Teams'
"Download as .docx" and Otter's DOCX export write it, ``Interviewer [00:00:01]``) is read like that
layout in a ``.txt``: the words under each header are its turn, the header itself no turn.

Otherwise a paragraph opening with a speaker label (``Name:``, see :mod:`pipeline.ingest.labels`)
starts a turn; a paragraph without one continues the previous turn, or is its own turn of speaker
``""`` when no speaker has spoken yet. A label whose name is set in bold may be longer (up to 6
words) and alone suffices to read the document as labelled; otherwise labels must recur
(:func:`~pipeline.ingest.labels.labels_recur` over paragraphs). Without labels every paragraph is a
turn of speaker ``""``.

Tables are read row by row: a row whose first cell holds only a short name (a speaker column) becomes
one paragraph ``"Name: rest of the row"``; other rows give one paragraph per cell paragraph.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pipeline.domain import ParsedTranscript, Turn
from pipeline.errors import InputError
from pipeline.fileio import fold_newlines
from pipeline.ingest.headers import find_headers, header_turns, text_lines
from pipeline.ingest.labels import (
    Label,
    clock_after,
    is_bare_label,
    labels_recur,
    match_label,
    strip_span,
    valid_name,
)
from pipeline.limits import DOCX_FILE_BYTES, check_file_size, open_zip

if TYPE_CHECKING:
    from docx.text.paragraph import Paragraph

MAX_BOLD_NAME_WORDS = 6


class _Para(NamedTuple):
    text: str
    bold_label: Label | None


def _is_bold(run: Any) -> bool:
    if run.bold is not None:
        return bool(run.bold)
    style = run.style
    return style is not None and style.font.bold is True


def _bold_label(paragraph: Paragraph, text: str) -> Label | None:
    """A label whose name is the paragraph's leading bold runs (``**Name**:`` or ``**Name:**``)."""
    prefix = ""
    for run in paragraph.runs:
        if not _is_bold(run):
            break
        prefix += run.text
    prefix = fold_newlines(prefix)
    if not prefix.strip() or not text.startswith(prefix):
        return None
    if prefix.rstrip().endswith(":"):
        name, end = prefix.rstrip()[:-1], len(prefix.rstrip())
    elif text[len(prefix) :].lstrip(" \t").startswith(":"):
        name, end = prefix, text.index(":", len(prefix)) + 1
    else:
        return None
    name = name.strip()
    if ":" in name or "\n" in name or len(name) > 40 or not 1 <= len(name.split()) <= MAX_BOLD_NAME_WORDS:
        return None
    return clock_after(text, Label(name, end, None))


def _paragraphs(document: Any) -> list[_Para]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    out: list[_Para] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = fold_newlines(block.text)
            if text.strip():
                out.append(_Para(text, _bold_label(block, text)))
        elif isinstance(block, Table):
            for row in block.rows:
                cells: list[Any] = []
                for cell in row.cells:  # a merged cell repeats: keep it once
                    if not any(cell._tc is c._tc for c in cells):
                        cells.append(cell)
                named = name_row([fold_newlines(c.text) for c in cells])
                if named is not None:
                    out.append(_Para(named, None))
                    continue
                for c in cells:
                    for p in c.paragraphs:
                        text = fold_newlines(p.text)
                        if text.strip():
                            out.append(_Para(text, _bold_label(p, text)))
    return out


def name_row(cells: list[str]) -> str | None:
    """A table row whose first cell holds only a short name (a speaker column), as one paragraph
    ``"Name: rest of the row"`` (the other non-empty cells joined by a space); ``None`` for other rows.

    Shared by the readers of word-processor documents (``.docx``, ``.odt``, ``.rtf``).

    >>> name_row(["Ann:", " Yes. ", "", "(laughs)"]), name_row(["A long first cell, not a name", "x"])
    ('Ann: Yes. (laughs)', None)
    """
    texts = [c.strip() for c in cells]
    rest = " ".join(t for t in texts[1:] if t)
    if len(texts) >= 2 and rest and "\n" not in texts[0] and valid_name(texts[0].rstrip(":")):
        return f"{texts[0].rstrip(':').strip()}: {rest}"
    return None


def parse_paragraphs(
    paragraphs: list[str], bold_labels: list[Label | None] | None = None, fmt: str = "docx"
) -> ParsedTranscript:
    """Build the stored text and turns from a document's non-empty paragraphs.

    Parameters
    ----------
    paragraphs : list of str, length n_paragraphs
        Paragraph texts in order (newlines folded, none whitespace-only).
    bold_labels : list of (Label or None), length n_paragraphs, optional
        Labels set in bold found by the reader; ``None`` entries (or no list) mean none.
    fmt : str
        The format reported (``"docx"``; ``"odt"`` and ``"rtf"`` are read by these rules too).

    Examples
    --------
    >>> p = parse_paragraphs(["Interview 1", "Int: Why?", "Ali: Hm.", "Long story.", "Int: Ok?"])
    >>> [(t.speaker, p.text[t.start:t.end]) for t in p.turns]
    [('', 'Interview 1'), ('Int', 'Why?'), ('Ali', 'Hm.\\n\\nLong story.'), ('Int', 'Ok?')]
    >>> p = parse_paragraphs(["Transcript", "Jane Doe   0:03", "Why?", "Ali Raza   0:05\\nHm."])
    >>> [(t.speaker, t.timestamp, p.text[t.start:t.end]) for t in p.turns]
    [('', None, 'Transcript'), ('Jane Doe', 3.0, 'Why?'), ('Ali Raza', 5.0, 'Hm.')]
    """
    bold = bold_labels if bold_labels is not None else [None] * len(paragraphs)
    labels = [b or match_label(p.split("\n", 1)[0]) for p, b in zip(paragraphs, bold, strict=True)]
    found = [lab.speaker for lab in labels if lab]
    labelled = labels_recur(found, len(paragraphs)) or sum(1 for b in bold if b) >= 2
    starts: list[int] = []
    pos = 0
    for p in paragraphs:
        starts.append(pos)
        pos += len(p) + 2
    text = "\n\n".join(paragraphs)
    lines = text_lines(text)
    headers = find_headers(text, lines)
    if headers is not None:
        skip = {i for i, (a, b) in enumerate(lines) if is_bare_label(text[a:b])}
        return ParsedTranscript(text, tuple(header_turns(text, lines, headers, skip)), fmt)
    turns: list[Turn] = []
    current: tuple[Label, int] | None = None  # label and start of its words

    def close(end: int) -> None:
        if current is not None and (span := strip_span(text, current[1], end)):
            turns.append(Turn(current[0].speaker, *span, timestamp=current[0].timestamp))

    for i, (para, lab) in enumerate(zip(paragraphs, labels, strict=True)):
        if labelled and lab is not None:
            close(starts[i - 1] + len(paragraphs[i - 1]) if i else 0)
            current = (lab, starts[i] + lab.end)
        elif (
            current is None
            and not is_bare_label(para)  # "Interviewer:" alone is not speech
            and (span := strip_span(text, starts[i], starts[i] + len(para)))
        ):
            turns.append(Turn("", *span))
    close(len(text))
    return ParsedTranscript(text, tuple(turns), fmt)


def read_docx(path: Path) -> ParsedTranscript:
    """Read a ``.docx`` transcript (see the module docstring for the layout rules).

    Raises
    ------
    InputError
        The file is not a readable ``.docx`` (truncated, corrupt, or another format renamed).
    """
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import XMLSyntaxError

    hint = "not a readable .docx (truncated or corrupt?); open it in Word or LibreOffice and save it again"
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: {hint}")
    check_file_size(path, DOCX_FILE_BYTES)
    try:
        open_zip(path, path).close()  # a zip bomb is refused here, before python-docx inflates anything
        document = docx.Document(str(path))
        paras = _paragraphs(document)
    except (
        PackageNotFoundError,
        zipfile.BadZipFile,
        ValueError,
        XMLSyntaxError,
        EOFError,
        OSError,
        NotImplementedError,
        AttributeError,  # python-docx on a part that is not the XML it expects
        TypeError,  # python-docx on a relationship without a target
        LookupError,  # an unknown encoding declared in a part
        zlib.error,
    ) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"{path}: {hint} ({type(exc).__name__}: {reason})") from None
    if not paras:
        raise InputError(f"{path}: the document has no text; check that you picked the right file")
    return parse_paragraphs([p.text for p in paras], [p.bold_label for p in paras])
