"""File helpers every writer shares: atomic writes, newline folding and CSV cells a spreadsheet will not
run as formulas."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from pipeline.errors import InputError


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    Parameters
    ----------
    path : path-like
        Destination; its folder must exist.
    data : bytes
        The complete file content.

    Raises
    ------
    InputError
        The folder does not exist.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{target}: the folder {target.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fold_newlines(text: str) -> str:
    """Fold ``\\r\\n`` and lone ``\\r`` to ``\\n``.

    >>> fold_newlines("a\\r\\nb\\rc")
    'a\\nb\\nc'
    """
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- CSV formula injection -------------------------------------------------------------------------
# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...), @SUM(...), a tab
# or CR before one). OWASP: prefix such a cell with a single quote, which spreadsheets show as text.
CSV_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
CSV_RAW_ENV = "QUALFLOW_CSV_RAW"
"""Set to ``1`` to write CSV cells exactly as they are (for pipelines that never open them in a spreadsheet)."""

# how Python writes a negative number (-0.5, -3, -1e-05, -inf): left alone, so numeric columns stay numeric
_NEGATIVE_NUMBER = re.compile(r"-(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-inf", re.IGNORECASE)


def csv_raw() -> bool:
    """Whether :data:`CSV_RAW_ENV` asks for raw CSV cells."""
    return os.environ.get(CSV_RAW_ENV, "").strip().lower() in ("1", "true", "yes")


def _triggers(text: str) -> bool:
    return bool(text) and text[0] in CSV_TRIGGERS and not _NEGATIVE_NUMBER.fullmatch(text)


def csv_safe(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet shows as text: a ``'`` before text starting with ``= + - @``,
    tab or CR (and before text that is quotes then such a character, so :func:`csv_unsafe` is exact).

    Numbers (and text that is a negative number) are left as they are.

    >>> [csv_safe(v) for v in ["=1+1", "@SUM(A1)", "+1", "-cmd", "-0.5", -0.5, "'=x", "'ok", "plain"]]
    ["'=1+1", "'@SUM(A1)", "'+1", "'-cmd", '-0.5', -0.5, "''=x", "'ok", 'plain']
    """
    if isinstance(value, str) and _triggers(value.lstrip("'")):
        return "'" + value
    return value


def csv_unsafe(text: str) -> str:
    """Undo :func:`csv_safe` on a cell read back: one leading ``'`` goes when the rest (past any further
    quotes) starts with a trigger character; any other text is returned as it is.

    >>> [csv_unsafe(v) for v in ["'=1+1", "''=x", "'ok", "'-0.5", "=raw"]]
    ['=1+1', "'=x", "'ok", "'-0.5", '=raw']
    """
    if text.startswith("'") and _triggers(text.lstrip("'")):
        return text[1:]
    return text


class SafeCsvWriter:
    """A :func:`csv.writer` that passes every cell through :func:`csv_safe` (unless :func:`csv_raw`)."""

    def __init__(self, fh: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(fh, **kwargs)
        self._raw = csv_raw()

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(row if self._raw else [csv_safe(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(fh: IO[str], **kwargs: Any) -> SafeCsvWriter:
    """The CSV writer every qualflow export uses: :class:`SafeCsvWriter` (formula-safe cells)."""
    return SafeCsvWriter(fh, **kwargs)


def csv_dict_writer(
    fh: IO[str], fieldnames: Sequence[str], *, restval: Any = "", extrasaction: str = "raise", **kwargs: Any
) -> csv.DictWriter[str]:
    """A :class:`csv.DictWriter` whose rows (and header) go through :class:`SafeCsvWriter`."""
    writer = csv.DictWriter(fh, fieldnames=fieldnames, restval=restval, extrasaction=extrasaction, **kwargs)  # type: ignore[arg-type]
    writer.writer = SafeCsvWriter(fh, **kwargs)  # type: ignore[assignment]
    return writer
