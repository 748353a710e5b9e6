"""Turn a file's bytes into the exact text qualflow stores.

The rules (one place, used by every text-based reader and the metadata CSV):

- a UTF-8 byte-order mark, or a UTF-16 one (little or big endian), selects the encoding and is dropped;
- without a byte-order mark the bytes must be UTF-8;
- NUL bytes in what should be UTF-8 mean a binary file (or UTF-16 without a byte-order mark);
- ``\\r\\n`` and lone ``\\r`` are folded to ``\\n``;
- an empty or whitespace-only file is an error.

Anything else raises :class:`~pipeline.errors.InputError` with one line that names the file.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from pipeline.errors import InputError
from pipeline.fileio import fold_newlines

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class UndecodableError(InputError):
    """A file whose bytes are not UTF-8 (nor UTF-16 after its byte-order mark). ``path`` and ``detail``
    (``"byte 0x93 at offset 31"``) let a batch name every such file in one message."""

    path: str = ""
    detail: str = ""


def decode_bytes(data: bytes, path: Path | str) -> str:
    """Decode a text file's bytes into the text qualflow stores.

    Parameters
    ----------
    data : bytes
        The file's raw content.
    path : Path or str
        The file, named in error messages.

    Returns
    -------
    str
        The decoded text, byte-order mark dropped, newlines folded to ``\\n``.

    Raises
    ------
    InputError
        Binary content, bytes that are neither UTF-8 nor UTF-16 with a byte-order mark, or a file with
        no text.

    Examples
    --------
    >>> decode_bytes("\\ufeffcafé\\r\\n".encode("utf-8"), "a.txt")
    'café\\n'
    >>> decode_bytes("\\ufeffhi".encode("utf-16-le"), "b.txt")
    'hi'
    """
    encoding = "utf-8"
    body = data
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, body = name, data[len(bom) :]
            break
    if encoding == "utf-8" and b"\x00" in body:
        raise InputError(
            f"{path}: contains NUL bytes, so it is a binary file (or UTF-16 without a byte-order mark), "
            "not text; save the transcript as UTF-8 text"
        )
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = body[exc.start : exc.start + 1].hex()
        err = UndecodableError(
            f"{path}: not UTF-8 or UTF-16 text (byte 0x{bad} at offset {exc.start} is not valid "
            f"{encoding.upper()}); re-save it as UTF-8"
        )
        err.path, err.detail = str(path), f"byte 0x{bad} at offset {exc.start}"
        raise err from None
    if "\x00" in text:
        raise InputError(f"{path}: contains NUL characters, so it is a binary file, not text")
    text = fold_newlines(text.removeprefix("\ufeff"))
    if not text.strip():
        raise InputError(f"{path}: the file is empty (no text); check that you picked the right file")
    return text
