"""OpenDocument text transcripts (``.odt``: LibreOffice, Google Docs, Word's "OpenDocument Text").

Read with the standard library: the zip's ``content.xml`` (checked for zip bombs first, read no further
than its declared size). Paragraphs are the body's ``text:p`` and ``text:h`` in document order, also
inside lists and sections; in a paragraph, ``text:span`` and links are text, ``text:s`` is one or more
spaces, ``text:tab`` a tab and ``text:line-break`` a line break, and runs of white space in the XML count
as one space (ODF's rule). Not text: footnotes and endnotes, comments, tracked deletions, frames and
drawings, and generated indexes (a table of contents).

Tables: a row whose first cell holds only a short name becomes one paragraph ``"Name: rest of the
row"``, as in ``.docx`` (:func:`~pipeline.ingest.word.name_row`); other rows give one paragraph per cell
paragraph.

Stored text and turns: the non-empty paragraphs (white space around each line removed), joined by a blank
line, read by the rules of ``.docx`` (:func:`~pipeline.ingest.word.parse_paragraphs`: speaker headers,
``Name:`` labels, otherwise one turn per paragraph), so a document saved as ``.odt`` or ``.docx`` gives
the same source.

A file that is not a zip, has no ``content.xml``, is another OpenDocument type (a spreadsheet) or holds
XML that does not parse raises :class:`~pipeline.errors.InputError` naming the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from pipeline.domain import ParsedTranscript
from pipeline.errors import InputError
from pipeline.ingest.word import name_row, parse_paragraphs
from pipeline.limits import check_file_size, open_zip, read_member

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
HINT = "not a readable .odt (truncated or corrupt?); open it in LibreOffice or Word and save it again"
ODT_MIMETYPES = (
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.text-template",
)

# elements whose content is not the document's text
SKIP = frozenset(
    {
        f"{TEXT}note",
        f"{TEXT}tracked-changes",
        f"{TEXT}sequence-decls",
        f"{TEXT}variable-decls",
        f"{TEXT}user-field-decls",
        f"{TEXT}table-of-content",
        f"{TEXT}alphabetical-index",
        f"{TEXT}illustration-index",
        f"{TEXT}table-index",
        f"{TEXT}object-index",
        f"{TEXT}user-index",
        f"{TEXT}bibliography",
        f"{OFFICE}annotation",
        f"{OFFICE}annotation-end",
        f"{OFFICE}forms",
        "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}frame",
        "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}custom-shape",
    }
)
ROW_GROUPS = frozenset({f"{TABLE}table-header-rows", f"{TABLE}table-rows", f"{TABLE}table-row-group"})
_SPACE_RE = re.compile(r"[ \t\r\n]+")


def _inline(el: ET.Element, out: list[str]) -> None:
    """Append the text of a paragraph's content (``el``'s text, children and their tails)."""
    if el.text:
        out.append(_SPACE_RE.sub(" ", el.text))
    for child in el:
        tag = child.tag
        if tag == f"{TEXT}s":
            try:
                count = max(1, min(int(child.get(f"{TEXT}c", "1")), 1000))
            except ValueError:
                count = 1
            out.append(" " * count)
        elif tag == f"{TEXT}tab":
            out.append("\t")
        elif tag == f"{TEXT}line-break":
            out.append("\n")
        elif tag not in SKIP:
            _inline(child, out)
        if child.tail:
            out.append(_SPACE_RE.sub(" ", child.tail))


def _paragraph(el: ET.Element) -> str:
    out: list[str] = []
    _inline(el, out)
    return "\n".join(line.strip(" \t") for line in "".join(out).split("\n")).strip()


def _cell_paragraphs(cell: ET.Element) -> list[str]:
    out: list[str] = []
    _blocks(cell, out)
    return out


def _row(row: ET.Element, out: list[str]) -> None:
    cells = [_cell_paragraphs(c) for c in row if c.tag == f"{TABLE}table-cell"]
    named = name_row(["\n".join(c) for c in cells])
    if named is not None:
        out.append(named)
    else:
        out.extend(p for c in cells for p in c)


def _blocks(el: ET.Element, out: list[str]) -> None:
    """Append the non-empty paragraphs of block-level content, in document order."""
    for child in el:
        tag = child.tag
        if tag in SKIP:
            continue
        if tag in (f"{TEXT}p", f"{TEXT}h"):
            if text := _paragraph(child):
                out.append(text)
        elif tag == f"{TABLE}table":
            for part in child:
                if part.tag == f"{TABLE}table-row":
                    _row(part, out)
                elif part.tag in ROW_GROUPS:
                    for row in part.iter(f"{TABLE}table-row"):
                        _row(row, out)
        else:  # lists, list items, sections, the body itself
            _blocks(child, out)


def odt_paragraphs(content_xml: bytes, name: str = "<odt>") -> list[str]:
    """The non-empty paragraphs of an ODT's ``content.xml``.

    Examples
    --------
    >>> xml = (b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    ...        b'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
    ...        b'<text:p>Int: <text:span>Why</text:span>?<text:s text:c="2"/>Hm.</text:p><text:p/>'
    ...        b'<text:list><text:list-item><text:p>P1:\\n  Because.<text:line-break/>Then.</text:p>'
    ...        b'</text:list-item></text:list></office:text></office:body></office:document-content>')
    >>> odt_paragraphs(xml)
    ['Int: Why?  Hm.', 'P1: Because.\\nThen.']
    """
    if b"<!ENTITY" in content_xml:
        raise InputError(f"{name}: {HINT} (its content.xml declares XML entities, which ODT files never do)")
    try:
        root = ET.fromstring(content_xml)
    except (ET.ParseError, LookupError, ValueError) as err:  # LookupError: an unknown encoding declared
        raise InputError(f"{name}: {HINT} (content.xml: {' '.join(str(err).split())})") from None
    body = root.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise InputError(
            f"{name}: not an OpenDocument text document (no office:text body); {HINT.split('; ')[1]}"
        )
    out: list[str] = []
    try:
        _blocks(body, out)
    except RecursionError:
        raise InputError(f"{name}: {HINT} (its content.xml is nested too deeply)") from None
    return out


def read_odt(path: Path) -> ParsedTranscript:
    """Read an ``.odt`` transcript (see the module docstring for the rules)."""
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: {HINT}")
    check_file_size(path)
    try:
        with open_zip(path, path) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                mimetype = read_member(zf, "mimetype", path)[:200].decode("ascii", "replace").strip()
                if mimetype not in ODT_MIMETYPES:
                    raise InputError(
                        f"{path}: not an OpenDocument text document (its type is {mimetype!r}); "
                        "save the transcript as .odt, .docx or .txt"
                    )
            if "content.xml" not in names:
                raise InputError(f"{path}: {HINT} (it has no content.xml)")
            content = read_member(zf, "content.xml", path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: {HINT} ({' '.join(str(exc).split())})") from None
    paragraphs = odt_paragraphs(content, str(path))
    if not paragraphs:
        raise InputError(f"{path}: the document has no text; check that you picked the right file")
    return parse_paragraphs(paragraphs, fmt="odt")
