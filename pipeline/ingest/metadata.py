"""Participant metadata: a CSV with one row per source.

Columns: ``source`` (required: the source's name as in the project), and optionally ``participant``,
``group``, ``date`` (ISO 8601, ``2024-03-05`` or ``2024-03-05T10:30``) and ``order`` (an integer);
other columns are kept as they are. The file is decoded like a transcript (UTF-8, optional BOM as
Excel writes it, or UTF-16 with BOM).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from pipeline.errors import InputError
from pipeline.ingest.decode import decode_bytes
from pipeline.limits import CSV_FILE_BYTES, check_file_size

KNOWN_COLUMNS: tuple[str, ...] = ("source", "participant", "group", "date", "order")


def read_metadata_csv(path: Path) -> dict[str, dict[str, str]]:
    """Read a participant metadata CSV.

    Parameters
    ----------
    path : Path
        The CSV file.

    Returns
    -------
    dict of str to dict of str to str
        ``{source: {column: value}}`` for every row, values stripped; the ``source`` column itself and
        empty values are left out.

    Raises
    ------
    InputError
        Naming the file and line: a header without ``source`` (or with empty or repeated column names),
        a row with more fields than the header, an empty or repeated ``source``, a non-integer
        ``order`` or a ``date`` that is not ISO 8601.
    """
    check_file_size(path, CSV_FILE_BYTES)
    text = decode_bytes(Path(path).read_bytes(), path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader)]
    if "source" not in [h.casefold() for h in header]:
        raise InputError(
            f"{path} line 1: the header must have a 'source' column (found {header}); "
            f"expected columns like {','.join(KNOWN_COLUMNS)}"
        )
    header = [h.casefold() if h.casefold() in KNOWN_COLUMNS else h for h in header]
    if "" in header:
        raise InputError(f"{path} line 1: column {header.index('') + 1} of the header has no name")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(f"{path} line 1: repeated column name(s) {repeated} in the header")
    rows: dict[str, dict[str, str]] = {}
    seen_at: dict[str, int] = {}
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > len(header):
            raise InputError(
                f"{path} line {line}: {len(fields)} fields but the header has {len(header)} columns "
                "(quote values that contain commas)"
            )
        row = {h: f.strip() for h, f in zip(header, fields, strict=False)}
        source = row.pop("source", "")
        if not source:
            raise InputError(f"{path} line {line}: empty 'source'; every row must name a source")
        if source in seen_at:
            raise InputError(
                f"{path} line {line}: source {source!r} already listed on line {seen_at[source]}; "
                "keep one row per source"
            )
        if row.get("order"):
            try:
                int(row["order"])
            except ValueError:
                raise InputError(f"{path} line {line}: order {row['order']!r} is not an integer") from None
        if row.get("date"):
            try:
                datetime.fromisoformat(row["date"])
            except ValueError:
                raise InputError(
                    f"{path} line {line}: date {row['date']!r} is not an ISO date (write it as YYYY-MM-DD)"
                ) from None
        seen_at[source] = line
        rows[source] = {k: v for k, v in row.items() if v}
    return rows
