"""File helpers every writer shares: atomic writes and newline folding."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
