"""Tabular transcripts: one row per utterance (``.csv``, ``.tsv``, ``.xlsx``).

The first non-empty row is the header. Columns are found by their header, case-insensitive, spaces and
hyphens read as ``_``; when several headers fit, the first name in each list below wins:

- text (required): :data:`TEXT_COLUMNS` (``text``, ``utterance``, ``utterance_text``, ...);
- speaker (optional): :data:`SPEAKER_COLUMNS` (``speaker``, ``name``, ``interlocutor``, ...);
- time (optional): :data:`TIME_COLUMNS` (``timestamp``, ``time``, ``start``, ...), seconds (``83``,
  ``83.5``) or a clock (``1:23``, ``00:01:23``, ``00:01:23.500``, ``[00:01:23]``); in ``.xlsx`` also a
  time or duration cell (a date-time cell counts its time of day).

Each row with text is ONE turn (rows are the unit an utterance table's annotations refer to, so they are
not merged even when one speaker has several in a row). The stored text has one line per row,
``"Speaker: words"`` (just ``"words"`` when the row names no speaker), joined by ``"\\n"``; the turn
covers the words only. Words are the cell stripped of surrounding white space; a cell's own line
breaks are kept (folded to ``\\n``). Rows with an empty text cell are skipped; other columns are
ignored.

``.csv`` and ``.tsv`` are decoded like every text file (:mod:`pipeline.ingest.decode`). A ``.tsv`` is
tab-separated; a ``.csv`` is split on the one of ``,`` ``;`` tab that its header line holds (when it
holds several, :class:`csv.Sniffer` decides, else the most frequent). An ``.xlsx`` is read from its
first sheet (openpyxl, read-only, cached values of formulas).

A table without a text column, with no row of text, or a broken file raises
:class:`~pipeline.errors.InputError` naming the file (and the row: rows count from 1, the header
included, as a spreadsheet shows them). A time that is not a time is the row's metadata, not its
words: the row is kept without a time and the transcript's ``notes`` name it. In a folder,
:func:`is_transcript_table` lets ingest skip a table that is not a transcript (a codings or metadata
CSV) instead.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import math
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.domain import ParsedTranscript, Turn
from pipeline.errors import InputError
from pipeline.ingest.decode import decode_bytes
from pipeline.limits import check_file_size, open_zip

TEXT_COLUMNS: tuple[str, ...] = (
    "text",
    "utterance",
    "utterance_text",
    "transcript",
    "content",
    "speech",
    "words",
    "says",
    "dialogue",
)
SPEAKER_COLUMNS: tuple[str, ...] = (
    "speaker",
    "speaker_name",
    "name",
    "interlocutor",
    "participant",
    "who",
    "role",
)
TIME_COLUMNS: tuple[str, ...] = ("timestamp", "time", "start", "start_time", "begin")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".xlsx")

_CLOCK_RE = re.compile(r"\[?\(?\s*(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)\s*\)?\]?")
_DELIMITERS = ",;\t"

Cell = object
Row = tuple[int, list[Cell]]  # (1-based row number, cells)


def header_key(header: Cell) -> str:
    """A header cell as the column lists name it: lower case, spaces and hyphens as ``_``.

    >>> header_key(" Utterance Text"), header_key("start-time"), header_key(None)
    ('utterance_text', 'start_time', '')
    """
    return re.sub(r"[\s\-]+", "_", str(header if header is not None else "").strip().lower())


def cell_text(value: Cell) -> str:
    """A cell as text: empty for ``None``, ``3`` for ``3.0``, line ends as ``\\n``.

    >>> cell_text(None), cell_text(3.0), cell_text("a\\r\\nb")
    ('', '3', 'a\\nb')
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace("\r\n", "\n").replace("\r", "\n")


def find_column(keys: list[str], names: Sequence[str]) -> int | None:
    """The index in ``keys`` of the first of ``names`` found there (``names`` in order of preference)."""
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def row_words(cells: Sequence[Cell], text_col: int) -> str:
    """The words of a row: its text cell, stripped. A row without words is no turn: :func:`parse_table`
    skips it, :func:`split_table` leaves it out and ``codings import-table`` counts turns by it, so
    the three agree on which row is which turn.

    >>> row_words(["Int", "  Why? "], 1), row_words(["Int"], 1)
    ('Why?', '')
    """
    return cell_text(cells[text_col] if text_col < len(cells) else None).strip()


def header_row(rows: Iterable[Row]) -> Row | None:
    """The first row with a non-blank cell (the header), or ``None``; consumes ``rows`` up to it."""
    for n, cells in rows:
        if any(cell_text(c).strip() for c in cells):
            return n, cells
    return None


def _seconds(value: Cell, where: str) -> float | None:
    seconds = _to_seconds(value, where)
    if seconds is not None and not math.isfinite(seconds):
        raise InputError(
            f"{where}: time {str(value)[:40]!r} is not a time; write seconds (83.5) or a clock (00:01:23)"
        )
    return seconds


def _to_seconds(value: Cell, where: str) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if not isinstance(value, int) or abs(value) < 10**15 else math.inf
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.datetime):
        value = value.time()
    if isinstance(value, dt.time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    raw = str(value).strip()
    if not raw:
        return None
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        pass
    m = _CLOCK_RE.fullmatch(raw)
    if m is None:
        raise InputError(
            f"{where}: time {raw[:40]!r} is not a time; write seconds (83.5) or a clock (00:01:23), "
            "or leave the cell empty"
        )
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + float(s.replace(",", "."))


def parse_table(rows: Iterable[Row], name: str, fmt: str, joiner: str | None = None) -> ParsedTranscript:
    """Build a transcript from a table's rows (header first; see the module docstring for the rules).

    Parameters
    ----------
    rows : iterable of (int, list), one per row
        The 1-based row number (for messages) and the row's cell values (``str``, numbers, times or
        ``None``).
    name : str
        The file, named in error messages.
    fmt : str
        ``"csv"``, ``"tsv"`` or ``"xlsx"``.
    joiner : str, optional
        The delimiter of a ``.csv``/``.tsv``: a row with more cells than the header, whose text
        column is the last, had the delimiter in its unquoted text (``Int,Hello, how are you``), and
        the extra cells are joined back into the text with it. Without it (``.xlsx``), cells past the
        header are other columns, ignored.

    Examples
    --------
    >>> rows = [(1, ["Speaker", "Time", "Text"]), (2, ["Int", "0:05", "Why?"]), (3, ["Int", "", "Really?"]),
    ...         (4, ["Ann", "12.5", " Yes. "]), (5, ["Ann", "", ""])]
    >>> p = parse_table(rows, "t.csv", "csv")
    >>> p.text
    'Int: Why?\\nInt: Really?\\nAnn: Yes.'
    >>> [(t.speaker, t.timestamp, p.text[t.start:t.end]) for t in p.turns]
    [('Int', 5.0, 'Why?'), ('Int', None, 'Really?'), ('Ann', 12.5, 'Yes.')]
    """
    rows = list(rows)
    it = iter(rows)
    head = header_row(it)
    if head is None:
        raise InputError(f"{name}: the table is empty (no header row); check that you picked the right file")
    keys = [header_key(h) for h in head[1]]
    text_col = find_column(keys, TEXT_COLUMNS)
    if text_col is None:
        found = ", ".join(repr(cell_text(h).strip()) for h in head[1] if cell_text(h).strip())
        raise InputError(
            f"{name}: no text column in the header row (found {found}); name the column of what was said "
            f"one of: {', '.join(TEXT_COLUMNS)}"
        )
    speaker_col = find_column(keys, SPEAKER_COLUMNS)
    time_col = find_column(keys, TIME_COLUMNS)
    # openai-whisper's .tsv output: "start<TAB>end<TAB>text", times in integer milliseconds
    milliseconds = keys == ["start", "end", "text"] and joiner == "\t"
    parts: list[str] = []
    turns: list[Turn] = []
    bad_times: list[str] = []
    pos = 0
    for n, cells in it:

        def cell(col: int | None, cells: list[Cell] = cells) -> Cell:
            return cells[col] if col is not None and col < len(cells) else None

        if joiner is not None and len(cells) > len(head[1]):
            if text_col != len(head[1]) - 1:
                raise InputError(
                    f"{name} row {n}: {len(cells)} cells but the header has {len(head[1])} columns; put "
                    "quotes around a text that holds the delimiter, or export the table again"
                )
            cells = [*cells[:text_col], joiner.join(cell_text(c) for c in cells[text_col:])]
        words = row_words(cells, text_col)
        if not words:
            continue
        speaker = " ".join(cell_text(cell(speaker_col, cells)).split())
        try:
            timestamp = _seconds(cell(time_col, cells), f"{name} row {n}")
        except InputError:  # a time is the row's metadata, not its words: the row is kept without it
            timestamp = None
            bad_times.append(f"row {n} {cell_text(cell(time_col, cells)).strip()[:40]!r}")
        if timestamp is not None and milliseconds:
            timestamp /= 1000.0
        prefix = f"{speaker}: " if speaker else ""
        turns.append(Turn(speaker, pos + len(prefix), pos + len(prefix) + len(words), timestamp=timestamp))
        parts.append(prefix + words)
        pos += len(prefix) + len(words) + 1
    if not turns:
        raise InputError(
            f"{name}: the table has a text column ({cell_text(head[1][text_col]).strip()!r}) but no row "
            "with text; check that you picked the right file"
        )
    notes: tuple[str, ...] = ()
    grouped = grouping_column(rows)
    if grouped is not None:
        column, n_values = grouped
        notes += (
            f"{Path(name).name} became one source, but its column {column!r} names {n_values} different "
            "values; if those are separate interviews, make one file each with "
            f"`qualflow split {name} --by {column}` and ingest that folder instead (each interview is then "
            "a source of its own)",
        )
    if bad_times:
        column = cell_text(head[1][time_col]).strip() if time_col is not None else "time"
        more = f" and {len(bad_times) - 3} more" if len(bad_times) > 3 else ""
        notes += (
            f"{name}: {len(bad_times)} {'row has' if len(bad_times) == 1 else 'rows have'} a {column!r} that "
            f"is not a time ({', '.join(bad_times[:3])}{more}), stored without one; write seconds (83.5) or "
            "a clock (00:01:23) and ingest the file again to keep it",
        )
    return ParsedTranscript("\n".join(parts), tuple(turns), fmt, notes)


# --- delimited text ------------------------------------------------------------------------------


def _delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    first = next((line for line in text.split("\n") if line.strip()), "")
    present = [d for d in _DELIMITERS if d in first]
    if len(present) == 1:
        return present[0]
    if not present:
        return ","
    try:
        sniffed = csv.Sniffer().sniff(text[:65536], delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    return sniffed if sniffed in present else max(present, key=first.count)


def _delimited_rows(text: str, delimiter: str, name: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[Row] = []
    try:
        for cells in reader:
            rows.append((len(rows) + 1, list(cells)))
    except csv.Error as exc:
        raise InputError(
            f"{name} row {len(rows) + 1}: not a readable table row ({exc}); check the quotes in it or "
            "export the table again"
        ) from None
    return rows


def _read_delimited(path: Path) -> tuple[list[Row], str, str]:
    """The rows (blank ones left out), the format and the delimiter of a ``.csv``/``.tsv``."""
    text = decode_bytes(path.read_bytes(), path)
    suffix = path.suffix.lower()
    delimiter = _delimiter(text, suffix)
    rows = _delimited_rows(text, delimiter, str(path))
    return [(n, cells) for n, cells in rows if any(str(c).strip() for c in cells)], suffix[1:], delimiter


def read_csv(path: Path) -> ParsedTranscript:
    """Read a ``.csv`` utterance table (see the module docstring)."""
    rows, fmt, delimiter = _read_delimited(path)
    return parse_table(rows, str(path), fmt, joiner=delimiter)


read_tsv = read_csv


# --- xlsx ----------------------------------------------------------------------------------------

XLSX_HINT = "not a readable .xlsx (truncated or corrupt?); open it in Excel or LibreOffice and save it again"


def _xlsx_rows(path: Path, limit: int | None = None) -> list[Row]:
    """The first sheet's rows (at most ``limit`` non-empty ones), cell values as openpyxl gives them."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: {XLSX_HINT}")
    check_file_size(path)
    rows: list[Row] = []
    try:
        open_zip(path, path).close()  # a zip bomb is refused here, before openpyxl inflates anything
        # openpyxl's warnings about a damaged workbook must not reach stderr, nor what it prints stdout
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                if not wb.worksheets:
                    raise InputError(
                        f"{path}: the workbook has no sheet; check that you picked the right file"
                    )
                sheet = wb.worksheets[0]
                if hasattr(sheet, "reset_dimensions"):  # some exporters write a wrong <dimension>
                    sheet.reset_dimensions()
                for n, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                    if any(v is not None and str(v).strip() for v in values):
                        rows.append((n, list(values)))
                        if limit is not None and len(rows) >= limit:
                            break
            finally:
                wb.close()
    except InputError:
        raise
    except (
        InvalidFileException,
        zipfile.BadZipFile,
        KeyError,  # a part the workbook's relationships name is missing
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        EOFError,
        OSError,
        LookupError,
        SyntaxError,  # XML parse errors (ElementTree's ParseError is a SyntaxError)
        NotImplementedError,  # a compression method zipfile does not know
        RuntimeError,  # an encrypted zip member ("password required")
        zlib.error,
    ) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"{path}: {XLSX_HINT} ({type(exc).__name__}: {reason})") from None
    return rows


def read_xlsx(path: Path) -> ParsedTranscript:
    """Read an ``.xlsx`` utterance table from its first sheet (see the module docstring)."""
    return parse_table(_xlsx_rows(path), str(path), "xlsx")


def is_transcript_table(path: Path) -> bool:
    """Whether a table file found in a folder is to be read as a transcript.

    ``False`` only when its header row is readable and has no text column (a codings or metadata
    CSV); a file whose header cannot be read at all is ``True``, so that reading it names the problem.
    """
    try:
        if path.suffix.lower() == ".xlsx":
            head = header_row(_xlsx_rows(path, limit=1))
        else:
            data = path.read_bytes()[:65536]
            # only the header matters here: undecodable bytes further on are reported when it is read
            text = data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8", "replace")
            text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
            lines = [line for line in text.split("\n") if line.strip()][:1]
            head = header_row(_delimited_rows("\n".join(lines), _delimiter(text, path.suffix.lower()), ""))
    except (InputError, OSError):
        return True
    if head is None:
        return True
    return find_column([header_key(h) for h in head[1]], TEXT_COLUMNS) is not None


# --- tables that hold several interviews -----------------------------------------------------------

#: Headers of a column that says which interview (document, respondent) a row belongs to.
SOURCE_COLUMNS: tuple[str, ...] = (
    "source",
    "transcript_id",
    "interview",
    "interview_id",
    "document",
    "document_id",
    "doc_id",
    "conversation",
    "conversation_id",
    "session",
    "session_id",
    "case",
    "case_id",
    "respondent",
    "respondent_id",
    "response_id",
    "responseid",  # Qualtrics
    "file",
    "filename",
)


def read_table_rows(path: Path) -> list[Row]:
    """The non-empty rows of a ``.csv``, ``.tsv`` or ``.xlsx`` table, header first (a row with more
    cells than the header and the text last, as :func:`parse_table` reads it, has them joined)."""
    if path.suffix.lower() == ".xlsx":
        return _xlsx_rows(path)
    rows, _, delimiter = _read_delimited(path)
    head = header_row(rows)
    if head is None:
        return rows
    width = len(head[1])
    text_col = find_column([header_key(h) for h in head[1]], TEXT_COLUMNS)
    if text_col != width - 1:
        return rows
    return [
        (n, c if len(c) <= width else [*c[:text_col], delimiter.join(map(cell_text, c[text_col:]))])
        for n, c in rows
    ]


def grouping_column(rows: Sequence[Row]) -> tuple[str, int] | None:
    """The header of a column that names several interviews (:data:`SOURCE_COLUMNS`) and how many
    values it holds, when it holds at least 2; else ``None``.

    >>> grouping_column([(1, ["transcript_id", "text"]), (2, ["7", "Hi."]), (3, ["9", "Yes."])])
    ('transcript_id', 2)
    >>> grouping_column([(1, ["Session", "text"]), (2, ["a", "Hi."]), (3, ["a", "Yes."])]) is None
    True
    """
    head = header_row(rows)
    if head is None:
        return None
    keys = [header_key(h) for h in head[1]]
    col = find_column(keys, SOURCE_COLUMNS)
    if col is None:
        return None
    values = {cell_text(cells[col]).strip() for n, cells in rows if n > head[0] and col < len(cells)}
    values.discard("")
    return (cell_text(head[1][col]).strip(), len(values)) if len(values) >= 2 else None


def file_part(value: str) -> str:
    """A group value as part of a file name: letters, digits, ``-`` ``_`` ``.`` kept, the rest ``_``.

    >>> file_part("int 01/b"), file_part("مصاحبه ۱")
    ('int_01_b', 'مصاحبه_۱')
    """
    part = re.sub(r"[^\w.\-]+", "_", value, flags=re.UNICODE).strip("._") or "_"
    if len(part) > 80:  # file systems allow 255 bytes: a long value keeps its start and a hash
        import hashlib

        part = f"{part[:60]}-{hashlib.sha256(value.encode()).hexdigest()[:12]}"
    return part


def _csv_value(value: Cell) -> str:
    if isinstance(value, dt.datetime):
        value = value.time()  # a date-time cell's time of day, as the reader takes it
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value.total_seconds())
    return cell_text(value)


def split_table(path: Path, by: str | None, out_dir: Path) -> list[tuple[Path, int]]:
    """Write one ``.csv`` per value of column ``by`` of the table ``path`` into ``out_dir``
    (``<table name>-<value>.csv``: the header and that value's rows, in order), for ingesting a
    table that holds several interviews as one source each. ``by=None``: one file per row
    (``<table name>-<row number>.csv``, the row number as a spreadsheet shows it, zero-padded), for
    survey answers, one respondent a row. Rows with an empty text cell are left out (ingest reads no
    turn from them). Returns each file written and its rows.

    Nothing is written when the column is missing, a row has no value in it, two values would give
    the same file name, or a file of that name exists in ``out_dir`` (:class:`InputError`, one line).
    """
    from pipeline.fileio import write_atomic

    rows = read_table_rows(path)
    head = header_row(rows)
    if head is None:
        raise InputError(f"{path}: the table is empty (no header row); check that you picked the right file")
    headers = [cell_text(h).strip() for h in head[1]]
    col = None
    if by is not None:
        wanted = header_key(by)
        col = next((i for i, h in enumerate(head[1]) if header_key(h) == wanted), None)
        if col is None:
            found = ", ".join(repr(h) for h in headers if h)
            raise InputError(
                f"{path}: no column {by!r} in the header row (found {found}); pass one of those to --by"
            )
    text_col = find_column([header_key(h) for h in head[1]], TEXT_COLUMNS)
    if text_col is None:
        found = ", ".join(repr(h) for h in headers if h)
        raise InputError(
            f"{path}: no text column in the header row (found {found}); name the column of what was said "
            f"one of: {', '.join(TEXT_COLUMNS)}"
        )
    width = len(str(rows[-1][0]))
    groups: dict[str, list[list[Cell]]] = {}
    for n, cells in rows:
        if n <= head[0]:
            continue
        if not row_words(cells, text_col):
            continue  # no words: no turn when ingested, and a file of only such rows would be refused
        if col is None:
            groups[f"{n:0{width}d}"] = [cells]
            continue
        value = cell_text(cells[col] if col < len(cells) else None).strip()
        if not value:
            raise InputError(
                f"{path} row {n}: no value in column {headers[col]!r}; fill it in or delete the row"
            )
        groups.setdefault(value, []).append(cells)
    if not groups:
        raise InputError(f"{path}: the table has a header but no rows; check that you picked the right file")
    names: dict[str, str] = {}
    for value in groups:
        name = f"{path.stem}-{file_part(value)}.csv"
        if name.casefold() in names:
            raise InputError(
                f"{path}: values {names[name.casefold()]!r} and {value!r} of column {headers[col or 0]!r} would "
                f"both be written to {name}; make them differ in letters or digits"
            )
        names[name.casefold()] = value
    exists = [
        out_dir / n for n in (f"{path.stem}-{file_part(v)}.csv" for v in groups) if (out_dir / n).exists()
    ]
    if exists:
        more = f" and {len(exists) - 1} more" if len(exists) > 1 else ""
        raise InputError(f"{exists[0]}{more} already exist; choose another --out folder or delete them")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, int]] = []
    for value, members in groups.items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_csv_value(h) for h in head[1])
        for cells in members:
            w.writerow(_csv_value(c) for c in cells)
        target = out_dir / f"{path.stem}-{file_part(value)}.csv"
        write_atomic(target, buf.getvalue().encode("utf-8"))
        written.append((target, len(members)))
    return written
