"""Rich Text Format transcripts (``.rtf``), parsed here (no dependency).

What Word, WordPad, TextEdit, LibreOffice and transcription services write: the document's text is
read from the RTF groups and control words. Paragraphs end at ``\\par`` (also ``\\sect``, ``\\page``);
``\\line`` is a line break inside a paragraph, ``\\tab`` a tab. Characters: ``\\'hh`` bytes in the
document's code page (``\\ansicpg``, or a font's ``\\fcharset``; consecutive bytes are decoded together,
so double-byte code pages work), ``\\uN`` Unicode escapes (negative N and surrogate pairs included;
the ``\\ucN`` fallback characters after each are skipped), ``\\~``, ``\\emdash``, quotes and the like.
Not text: the font, colour and style tables, document info, pictures, objects, headers, footers,
footnotes, comments, field instructions (a field's shown result is kept) and every ``{\\*...}``
destination; ``\\bin`` data is skipped.

Tables: a row whose first cell holds only a short name becomes one paragraph ``"Name: rest of the
row"``, as in ``.docx`` (:func:`~pipeline.ingest.word.name_row`); other rows give one paragraph per cell
paragraph.

Stored text and turns: the non-empty paragraphs (white space around each removed), joined by a blank
line, read by the rules of ``.docx`` (:func:`~pipeline.ingest.word.parse_paragraphs`: speaker headers,
``Name:`` labels, otherwise one turn per paragraph), so a document saved as ``.rtf`` or ``.docx`` gives
the same source.

A file that does not start with ``{\\rtf``, or ends before the document's group is closed (truncated),
raises :class:`~pipeline.errors.InputError` naming the file; anything after the document's closing
brace is ignored, as Word and WordPad do.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.domain import ParsedTranscript
from pipeline.errors import InputError
from pipeline.ingest.word import name_row, parse_paragraphs

HINT = "open it in a word processor and save it again (as .rtf or .docx)"

# destinations whose content is not the document's text (besides every {\*\...} one)
SKIP_DESTINATIONS = frozenset(
    """
    fonttbl colortbl stylesheet info pict object objdata objclass objname shppict nonshppict shpinst
    header headerl headerr headerf footer footerl footerr footerf footnote annotation atnid atnauthor
    atndate atnref atntime atrfstart atrfend fldinst listtable listoverridetable revtbl rsidtbl
    generator themedata colorschememapping datastore latentstyles xmlnstbl filetbl pgdsctbl
    bkmkstart bkmkend private template userprops docvar comment title subject author operator
    keywords doccomm creatim revtim printim buptim company manager category hlinkbase
    listtext pntext shprslt
    """.split()
)
SYMBOLS = {
    "tab": "\t",
    "emdash": "\u2014",
    "endash": "\u2013",
    "emspace": "\u2003",
    "enspace": "\u2002",
    "qmspace": "\u2005",
    "bullet": "\u2022",
    "lquote": "\u2018",
    "rquote": "\u2019",
    "ldblquote": "\u201c",
    "rdblquote": "\u201d",
    "zwj": "\u200d",
    "zwnj": "\u200c",
    "ltrmark": "\u200e",
    "rtlmark": "\u200f",
}
CONTROL_SYMBOLS = {"~": "\u00a0", "_": "\u2011", "\\": "\\", "{": "{", "}": "}", "-": ""}
PARAGRAPH_ENDS = frozenset({"par", "sect", "page"})
# never taken for a \uN fallback character (a writer with \uc1 that writes none)
STRUCTURE = PARAGRAPH_ENDS | {"line", "cell", "nestcell", "row", "nestrow", "u", "uc"}
CHARSETS = {  # \fcharsetN -> code page
    0: "cp1252",
    77: "mac_roman",
    128: "cp932",
    129: "cp949",
    134: "cp936",
    136: "cp950",
    161: "cp1253",
    162: "cp1254",
    163: "cp1258",
    177: "cp1255",
    178: "cp1256",
    186: "cp1257",
    204: "cp1251",
    222: "cp874",
    238: "cp1250",
}
TOKEN_RE = re.compile(
    r"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # control word, optional number, delimiting space
    r"|\\'([0-9a-fA-F]{2})"  # a byte in the code page
    r"|\\([^a-zA-Z'])"  # control symbol (also \ before a newline = \par)
    r"|([{}])"
    r"|[\r\n]+"  # line breaks in the file are not text
    r"|([^\\{}\r\n]+)"  # a run of text
    r"|(\\)"  # a lone backslash at the end, or \' without two hex digits
)


def _codec(name: str, fallback: str = "cp1252") -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return fallback


@dataclass
class _State:
    skip: bool = False  # inside a destination that is not text
    uc: int = 1  # characters to skip after \uN
    font: int | None = None
    in_font_table: bool = False
    in_table: bool = False  # \intbl: the paragraph is inside a table cell


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.codepage = "cp1252"
        self.fonts: dict[int, str] = {}  # font number -> code page
        self.font_def: int | None = None  # the font being defined in \fonttbl
        self.default_font: int | None = None  # \deffN
        self.bytes = bytearray()  # \'hh bytes waiting to be decoded together
        self.current: list[str] = []  # the paragraph being read
        self.paragraphs: list[str] = []
        self.cell: list[str] = []  # paragraphs of the table cell being read
        self.row: list[str] = []  # cells of the table row being read (each its paragraphs joined)
        self.row_paragraphs: list[list[str]] = []

    # --- text --------------------------------------------------------------------------------

    def flush_bytes(self, st: _State) -> None:
        if self.bytes:
            font = st.font if st.font is not None else self.default_font
            codepage = self.fonts.get(font, self.codepage) if font is not None else self.codepage
            self.current.append(bytes(self.bytes).decode(codepage, "replace"))
            self.bytes.clear()

    def emit(self, text: str) -> None:
        self.current.append(text)

    def end_paragraph(self, st: _State) -> None:
        self.flush_bytes(st)
        text = _finish("".join(self.current))
        self.current = []
        if st.in_table:
            if text:
                self.cell.append(text)
        elif text:
            self.paragraphs.append(text)

    def end_cell(self, st: _State) -> None:
        self.end_paragraph(replace(st, in_table=True))
        self.row_paragraphs.append(self.cell)
        self.row.append("\n".join(self.cell))
        self.cell = []

    def end_row(self, st: _State) -> None:
        self.flush_bytes(st)
        if "".join(self.current).strip():  # text after the last \cell: a cell of its own
            self.end_cell(st)
        self.current = []
        named = name_row(self.row) if len(self.row) >= 2 else None
        if named is not None:
            self.paragraphs.append(named)
        else:
            self.paragraphs.extend(p for cell in self.row_paragraphs for p in cell)
        self.row, self.row_paragraphs, self.cell = [], [], []
        st.in_table = False

    # --- parsing -----------------------------------------------------------------------------

    def parse(self, text: str) -> list[str]:
        st = _State()
        stack: list[_State] = []
        skip_chars = 0  # \uN fallback characters still to skip
        pending_high: int | None = None  # a high surrogate waiting for its low half
        pos, n = 0, len(text)
        while pos < n:
            m = TOKEN_RE.match(text, pos)
            assert m is not None  # the last alternatives match any character
            pos = m.end()
            word, arg, hexbyte, symbol, brace, run, _lone = m.groups()
            if brace is None and run is None and hexbyte is None and symbol is None and word is None:
                continue  # a line break in the file, or a lone backslash
            if brace == "{":
                self.flush_bytes(st)
                stack.append(st)
                st = replace(st)
                skip_chars = 0
                continue
            if brace == "}":
                self.flush_bytes(st)
                st = stack.pop()  # never empty: the text starts with "{", and returns when it is closed
                skip_chars = 0
                if not stack:
                    self.end_paragraph(st)
                    if self.row or self.cell:
                        self.end_row(st)
                    return self.paragraphs  # the document's group is closed: the rest is not RTF
                continue
            if word is not None:
                number = int(arg) if arg is not None else None
                if word == "bin" and number is not None and number > 0:  # raw bytes follow: never text
                    if pos + number > n:
                        break
                    pos += number
                    continue
                if skip_chars and word not in STRUCTURE:
                    skip_chars -= 1  # a control word counts as one fallback character
                    continue
                skip_chars = 0
                if word == "u" and number is not None:
                    if st.skip or st.in_font_table:  # LibreOffice writes a font's name as \uN there
                        skip_chars = st.uc
                        continue
                    self.flush_bytes(st)
                    code = number + 0x10000 if number < 0 else number
                    skip_chars = st.uc
                    if 0xD800 <= code < 0xDC00:
                        pending_high = code
                        continue
                    if 0xDC00 <= code < 0xE000 and pending_high is not None:
                        code = 0x10000 + ((pending_high - 0xD800) << 10) + (code - 0xDC00)
                    elif 0xD800 <= code < 0xE000 or not 0 <= code <= 0x10FFFF:
                        code = 0xFFFD  # a lone surrogate half, or a number no character has
                    pending_high = None
                    self.emit(chr(code))
                    continue
                pending_high = None
                self.control_word(word, number, st)
                continue
            if hexbyte is not None:
                if skip_chars:
                    skip_chars -= 1
                elif st.in_font_table or st.skip:
                    pass
                else:
                    self.bytes.append(int(hexbyte, 16))
                continue
            if symbol is not None:
                if skip_chars:
                    skip_chars -= 1
                    continue
                if symbol == "*":
                    st.skip = True
                elif symbol in "\n\r" and not st.skip:
                    self.end_paragraph(st)
                elif symbol in CONTROL_SYMBOLS and not st.skip:
                    self.flush_bytes(st)
                    self.emit(CONTROL_SYMBOLS[symbol])
                continue
            assert run is not None
            if skip_chars:
                k = min(skip_chars, len(run))
                skip_chars -= k
                run = run[k:]
            if st.skip or st.in_font_table or not run:
                continue
            if run.isascii():
                self.flush_bytes(st)
                self.emit(run)
            else:  # raw 8-bit bytes: text in the code page (read as latin-1 to keep the bytes)
                self.bytes.extend(run.encode("latin-1"))
        raise InputError(
            f"{self.name}: not a readable .rtf: the file ends before the document does (truncated?); {HINT}"
        )

    def control_word(self, word: str, number: int | None, st: _State) -> None:
        if st.in_font_table:  # only the fonts' code pages are wanted from the font table
            if word == "f" and number is not None:
                self.font_def = number
            elif word == "fcharset" and number is not None and self.font_def is not None:
                self.fonts[self.font_def] = CHARSETS.get(number, self.codepage)
            elif word == "cpg" and number is not None and self.font_def is not None:
                self.fonts[self.font_def] = _codec(f"cp{number}", self.codepage)
            return
        if word == "fonttbl":
            st.in_font_table = True
            return
        if word in SKIP_DESTINATIONS:
            st.skip = True
            return
        if word == "ansicpg" and number is not None:
            self.codepage = _codec("mac_roman" if number == 10000 else f"cp{number}")
        elif word == "mac":
            self.codepage = "mac_roman"
        elif word == "pc":
            self.codepage = "cp437"
        elif word == "pca":
            self.codepage = "cp850"
        elif word == "uc" and number is not None:
            st.uc = max(number, 0)
        elif word == "f" and number is not None:
            self.flush_bytes(st)
            st.font = number
        elif word == "deff" and number is not None:
            self.default_font = number
        elif st.skip:
            return
        elif word in PARAGRAPH_ENDS:
            self.end_paragraph(st)
        elif word == "line":
            self.flush_bytes(st)
            self.emit("\n")
        elif word == "intbl":
            st.in_table = True
        elif word == "pard":
            st.in_table = False
        elif word in ("cell", "nestcell"):
            self.end_cell(st)
        elif word in ("row", "nestrow"):
            self.end_row(st)
        elif word in SYMBOLS:
            self.flush_bytes(st)
            self.emit(SYMBOLS[word])


def _finish(paragraph: str) -> str:
    return "\n".join(line.strip() for line in paragraph.replace("\r", "").split("\n")).strip()


def rtf_paragraphs(data: bytes, name: str = "<rtf>") -> list[str]:
    """The non-empty paragraphs of an RTF document (white space around each line removed).

    Examples
    --------
    >>> rtf = rb"{\\rtf1\\ansi\\ansicpg1252{\\fonttbl{\\f0 Arial;}}\\f0 Int: Caf\\'e9?\\par {\\b P1:} \\u1587?\\u1604?\\u1575?\\u1605?\\par}"
    >>> rtf_paragraphs(rtf)
    ['Int: Café?', 'P1: سلام']
    """
    text = data.decode("latin-1")
    start = text.lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    if not start.startswith("{\\rtf"):
        raise InputError(f"{name}: not an RTF file (it does not start with '{{\\rtf'); {HINT}")
    return _Reader(name).parse(start)


def read_rtf(path: Path) -> ParsedTranscript:
    """Read a ``.rtf`` transcript (see the module docstring for the rules)."""
    paragraphs = rtf_paragraphs(path.read_bytes(), str(path))
    if not paragraphs:
        raise InputError(f"{path}: the document has no text; check that you picked the right file")
    return parse_paragraphs(paragraphs, fmt="rtf")
