"""Codings CSV: human codings in and out, checked against the codebook and the stored sources.

Columns: ``source,start,end,code,coder`` (required), ``created_at``, ``origin``, ``memo`` (optional).
``start``/``end`` are character offsets into the stored ``Source.text`` (Python ``str`` indices, i.e.
Unicode code points); ``code`` is a code's name, or, where several codes share that name, its path
(``Barriers/Other``) or guid (:func:`pipeline.codebook.find_codes`); exports write the code's key, its
path where the name is shared; ``origin`` is one of
:data:`pipeline.domain.ORIGINS` (default ``human``); ``created_at`` is ISO 8601. The file is UTF-8,
with or without a byte-order mark.

:func:`read_codings_csv` checks every line before it returns anything and raises one
:class:`~pipeline.errors.InputError` listing every bad line, so a user fixes the file in one pass.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from pipeline.codebook import ambiguous_message, find_codes, not_codable_message
from pipeline.domain import ORIGINS, Codebook, Coding
from pipeline.errors import InputError, did_you_mean
from pipeline.fileio import csv_unsafe, csv_writer, write_atomic
from pipeline.limits import CSV_FILE_BYTES, check_file_size
from pipeline.text import counted

__all__ = ["CODINGS_COLUMNS", "REQUIRED_COLUMNS", "codings_to_csv", "read_codings_csv", "write_codings_csv"]

REQUIRED_COLUMNS: tuple[str, ...] = ("source", "start", "end", "code", "coder")
CODINGS_COLUMNS: tuple[str, ...] = (*REQUIRED_COLUMNS, "created_at", "origin", "memo")


def _offset(value: str, column: str, problems: list[str]) -> int | None:
    try:
        number = int(value.strip())
    except ValueError:
        problems.append(f"{column} '{value}' is not a whole number")
        return None
    if number < 0:
        problems.append(f"{column} {number} is negative")
        return None
    return number


def read_codings_csv(
    path: str | os.PathLike[str], codebook: Codebook, sources: Mapping[str, str]
) -> list[Coding]:
    """Read and check a codings CSV.

    Parameters
    ----------
    path : path-like
        The CSV file.
    codebook : Codebook
        Codes may be named by name or by guid.
    sources : Mapping[str, str]
        Source name -> stored text; offsets are checked against ``len(text)``.

    Returns
    -------
    list of Coding
        One per data line, in file order (``code`` is always the code's key: its name, or its path
        where the name is shared).

    Raises
    ------
    InputError
        Missing or unknown columns, or one message listing every bad line: unknown codes and sources
        (with the closest names), codes the codebook marks not codable (a category: ``codable: false``,
        ``isCodable="false"``, a QualCoder category), offsets that are not whole numbers, negative, ``start >= end`` or
        past the end of the source, an empty coder, an unknown origin, a bad ``created_at``.
    """
    origin = str(path)
    check_file_size(path, CSV_FILE_BYTES)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{origin}: no such file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(f"{origin} line {line}: not UTF-8; save the file as UTF-8") from None
    first = text.split("\n", 1)[0]
    # Excel in many locales saves "CSV" separated by semicolons; a tab-separated export is common too
    delimiter = next((d for d in (";", "\t") if "," not in first and d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]  # "Source,Start,..." from a spreadsheet
    except StopIteration:
        raise InputError(
            f"{origin}: the file is empty; expected the header {','.join(REQUIRED_COLUMNS)}"
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{origin}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)}; the header needs {','.join(REQUIRED_COLUMNS)} "
            f"(optional: created_at, origin, memo)"
        )
    unknown = [c for c in header if c not in CODINGS_COLUMNS]
    if unknown:
        raise InputError(
            f"{origin}: unknown column '{unknown[0]}'; valid columns are {list(CODINGS_COLUMNS)}"
        )

    code_names = codebook.names()
    by_key = {c.name: c for c in codebook.codes}
    resolved: dict[str, list[str]] = {}

    codings: list[Coding] = []
    bad: list[str] = []
    bad_lines = 0
    line = reader.line_num
    for cells in reader:
        start_line, line = line + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        problems: list[str] = []
        if len(cells) != len(header):
            problems.append(f"{len(cells)} cells but the header has {len(header)} columns")
            bad.append(f"line {start_line}: {problems[0]}")
            bad_lines += 1
            continue
        row = dict(zip(header, map(csv_unsafe, cells), strict=True))  # undo the export's formula guard
        source = row["source"].strip()
        code_key = row["code"].strip()
        if code_key not in resolved:
            resolved[code_key] = [c.name for c in find_codes(code_key, codebook)]
        found = resolved[code_key]
        code_name = found[0] if len(found) == 1 else None
        if not found:
            problems.append(f"code '{code_key}' is not in the codebook{did_you_mean(code_key, code_names)}")
        elif len(found) > 1:
            problems.append(
                ambiguous_message(code_key, [c for c in codebook.codes if c.name in found], codebook)
            )
        elif not by_key[found[0]].is_codable:
            problems.append(not_codable_message(code_key, by_key[found[0]], codebook))
        source_text = sources.get(source)
        if source_text is None:
            problems.append(f"source '{source}' is not stored{did_you_mean(source, sources)}")
        start = _offset(row["start"], "start", problems)
        end = _offset(row["end"], "end", problems)
        if start is not None and end is not None:
            if start >= end:
                problems.append(f"start {start} is not before end {end}")
            elif source_text is not None and end > len(source_text):
                problems.append(
                    f"end {end} is past the end of source '{source}' ({len(source_text)} characters)"
                )
        coder = row["coder"].strip()
        if not coder:
            problems.append("the coder is empty; name who coded it")
        coding_origin = row.get("origin", "").strip() or "human"
        if coding_origin not in ORIGINS:
            problems.append(f"origin '{coding_origin}' is unknown; use one of {list(ORIGINS)}")
        elif coding_origin == "consensus" and coder and coder != "consensus":
            problems.append(
                f"origin 'consensus' with coder '{coder}': that origin marks a lead's adjudication, coder "
                "'consensus'; use origin human or imported for another coder"
            )
        created_at = row.get("created_at", "").strip() or None
        if created_at is not None:
            try:
                datetime.fromisoformat(created_at)
            except ValueError:
                problems.append(
                    f"created_at '{created_at}' is not an ISO 8601 date-time (2024-05-01T14:30:00Z)"
                )
        if problems:
            bad_lines += 1
            bad.extend(f"line {start_line}: {p}" for p in problems)
            continue
        assert code_name is not None and start is not None and end is not None
        codings.append(
            Coding(
                source=source,
                start=start,
                end=end,
                code=code_name,
                coder=coder,
                origin=coding_origin,
                created_at=created_at,
                memo=row.get("memo", "") or None,
            )
        )
    if bad:
        plural = "s" if bad_lines > 1 else ""
        raise InputError(f"{origin}: {bad_lines} bad line{plural}: " + grouped_problems(bad))
    return codings


MAX_PROBLEMS = 8
"""At most this many distinct problems are spelled out in a bad-file message (then "and N more")."""


def line_ranges(lines: list[int], limit: int = 6, unit: str = "line") -> str:
    """``[3, 4, 5, 9]`` -> ``"lines 3-5, 9"``; one line -> ``"line 3"``; past ``limit`` ranges, a count.

    >>> line_ranges([7]), line_ranges([3, 4, 5, 9]), line_ranges(list(range(1, 40, 2)), limit=3)
    ('line 7', 'lines 3-5, 9', 'lines 1, 3, 5 and 17 more (20 lines)')
    """
    runs: list[list[int]] = []
    for n in sorted(lines):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    parts = [f"{a}-{b}" if b > a else f"{a}" for a, b in runs]
    if len(parts) == 1 and runs[0][0] == runs[0][1]:
        return f"{unit} {parts[0]}"
    if len(parts) > limit:
        more = sum(b - a + 1 for a, b in runs[limit:])
        return f"{unit}s {', '.join(parts[:limit])} and {more} more ({len(lines)} {unit}s)"
    return f"{unit}s {', '.join(parts)}"


def grouped_problems(bad: list[str], limit: int = MAX_PROBLEMS, unit: str = "line") -> str:
    """``"line N: problem"`` items as one line, lines with the same problem together, in the order first
    seen, at most ``limit`` problems spelled out: a file whose 92 lines name 4 missing sources reads as 4
    problems, not 92.

    >>> grouped_problems(["line 2: x", "line 3: x", "line 5: y", "line 4: x"])
    'lines 2-4: x; line 5: y'
    >>> grouped_problems([f"line {i}: p{i}" for i in range(2, 6)], limit=2)
    'line 2: p2; line 3: p3; and 2 more problems (lines 4-5)'
    >>> grouped_problems([f"line {i}: p{i}" for i in range(2, 5)], limit=2)
    'line 2: p2; line 3: p3; and 1 more problem (line 4)'
    """
    groups: dict[str, list[int]] = {}
    for item in bad:
        head, _, problem = item.partition(": ")
        groups.setdefault(problem, []).append(int(head.removeprefix(f"{unit} ")))
    items = list(groups.items())
    out = [f"{line_ranges(lines, unit=unit)}: {problem}" for problem, lines in items[:limit]]
    if len(items) > limit:
        rest = sorted({n for _, lines in items[limit:] for n in lines})
        out.append(f"and {counted(len(items) - limit, 'more problem')} ({line_ranges(rest, unit=unit)})")
    return "; ".join(out)


def codings_to_csv(codings: list[Coding]) -> str:
    """The CSV text :func:`write_codings_csv` writes (all of :data:`CODINGS_COLUMNS`)."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(CODINGS_COLUMNS)
    for c in codings:
        writer.writerow(
            [c.source, c.start, c.end, c.code, c.coder, c.created_at or "", c.origin, c.memo or ""]
        )
    return out.getvalue()


def write_codings_csv(codings: list[Coding], path: str | os.PathLike[str]) -> None:
    """Write codings as CSV, UTF-8 without BOM, atomically."""
    write_atomic(path, codings_to_csv(codings).encode("utf-8"))
