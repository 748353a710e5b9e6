"""Every size limit qualflow applies to untrusted input, in one place.

Each limit has a name, a default and an environment variable that raises (or lowers) it; the value is
read from the environment on every check, so a test or a one-off run can change it::

    QUALFLOW_LIMIT_ARCHIVE_MEMBER_BYTES=1073741824 qualflow import qdpx big-study.qdpx

Errors raise :class:`~pipeline.errors.InputError` (one line, exit code 2) naming the file, the limit,
its value and the variable that raises it (:func:`exceeded`). The table is in ``docs/security.md``.

Zip archives (``.docx``, ``.qdpx``) are checked from their central directory before a byte is inflated
(:func:`check_zip`), and members are read through a reader that stops at the declared size
(:func:`read_member`), so a zip bomb is refused in constant memory.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.errors import InputError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Limit:
    """One named limit: its default, its unit and what it bounds."""

    name: str
    default: int
    unit: str  # "bytes", "characters", "members", ...
    what: str

    @property
    def env(self) -> str:
        """The environment variable that overrides the default."""
        return f"QUALFLOW_LIMIT_{self.name.upper()}"

    @property
    def value(self) -> int:
        """The limit in force: the environment variable when set to a positive whole number, else the default."""
        raw = os.environ.get(self.env, "").strip().replace("_", "")
        if not raw:
            return self.default
        try:
            value = int(raw)
        except ValueError:
            raise InputError(
                f"{self.env}={raw!r} is not a whole number; unset it or give e.g. {self.default}"
            ) from None
        if value < 1:
            raise InputError(f"{self.env}={raw!r} must be at least 1")
        return value


def _limit(name: str, default: int, unit: str, what: str) -> Limit:
    limit = Limit(name, default, unit, what)
    LIMITS[name] = limit
    return limit


LIMITS: dict[str, Limit] = {}

TEXT_FILE_BYTES = _limit(
    "text_file_bytes", 64 * MIB, "bytes", "size of a .txt/.md/.vtt/.srt/.rtf transcript file"
)
DOCX_FILE_BYTES = _limit(
    "docx_file_bytes", 256 * MIB, "bytes", "size of a .docx/.odt/.xlsx/.pdf transcript file"
)
CODEBOOK_FILE_BYTES = _limit(
    "codebook_file_bytes", 16 * MIB, "bytes", "size of a codebook file (.yaml/.csv/.qdc)"
)
CSV_FILE_BYTES = _limit(
    "csv_file_bytes", 256 * MIB, "bytes", "size of a codings, metadata or transcript CSV/TSV file"
)
QDPX_FILE_BYTES = _limit("qdpx_file_bytes", 2 * GIB, "bytes", "size of a .qdpx project file")
ARCHIVE_MEMBER_BYTES = _limit(
    "archive_member_bytes", 256 * MIB, "bytes", "uncompressed size of one member of a zip (.docx/.qdpx)"
)
ARCHIVE_TOTAL_BYTES = _limit(
    "archive_total_bytes", 1 * GIB, "bytes", "uncompressed size of all members of a zip (.docx/.qdpx)"
)
ARCHIVE_RATIO = _limit(
    "archive_ratio", 200, "x", "compression ratio of a zip member larger than 1 MiB (uncompressed/compressed)"
)
ARCHIVE_MEMBERS = _limit("archive_members", 10_000, "members", "number of members in a zip (.docx/.qdpx)")
# counted as expanded while composing: an alias inside an anchor counts once for every use of that
# anchor, so nested anchors ("billion laughs") are refused before anything is expanded
YAML_ALIASES = _limit(
    "yaml_aliases", 100, "aliases", "number of aliases (*name) in a YAML codebook, counted as expanded"
)
TRANSCRIPT_CHARS = _limit(
    "transcript_chars", 50_000_000, "characters", "length of one transcript's text (longer turns are chunked)"
)
SEGMENT_CHUNK_CHARS = _limit(
    "segment_chunk_chars", 100_000, "characters", "text handed to spaCy at once when a turn is longer"
)

# a member smaller than this is not held to ARCHIVE_RATIO (small XML parts compress very well)
RATIO_FLOOR_BYTES = 1 * MIB

FILE_LIMITS: dict[str, Limit] = {
    ".txt": TEXT_FILE_BYTES,
    ".md": TEXT_FILE_BYTES,
    ".vtt": TEXT_FILE_BYTES,
    ".srt": TEXT_FILE_BYTES,
    ".rtf": TEXT_FILE_BYTES,
    ".docx": DOCX_FILE_BYTES,
    ".xlsx": DOCX_FILE_BYTES,
    ".odt": DOCX_FILE_BYTES,
    ".pdf": DOCX_FILE_BYTES,
    ".tsv": CSV_FILE_BYTES,
    ".yaml": CODEBOOK_FILE_BYTES,
    ".yml": CODEBOOK_FILE_BYTES,
    ".qdc": CODEBOOK_FILE_BYTES,
    ".csv": CSV_FILE_BYTES,
    ".qdpx": QDPX_FILE_BYTES,
}


def exceeded(origin: object, limit: Limit, actual: int | None = None, detail: str = "") -> InputError:
    """The one-line error for ``origin`` going over ``limit`` (to ``raise``).

    >>> str(exceeded("a.txt", TEXT_FILE_BYTES, 70 * MIB)).split(";")[0]
    'a.txt: size of a .txt/.md/.vtt/.srt/.rtf transcript file is 73400320 bytes, over the limit text_file_bytes = 67108864 bytes'
    """
    seen = f" is {actual} {limit.unit}" if actual is not None else " is too large"
    where = f" ({detail})" if detail else ""
    return InputError(
        f"{origin}: {limit.what}{where}{seen}, over the limit {limit.name} = {limit.value} {limit.unit}; "
        f"if you trust the file, raise it with the environment variable {limit.env}=N"
    )


def check_value(origin: object, limit: Limit, actual: int, detail: str = "") -> None:
    """Raise :func:`exceeded` when ``actual`` is over ``limit``."""
    if actual > limit.value:
        raise exceeded(origin, limit, actual, detail)


def check_file_size(path: str | os.PathLike[str], limit: Limit | None = None) -> None:
    """Refuse ``path`` when it is larger than ``limit`` (by default the limit of its suffix).

    A missing file passes (the reader reports it).
    """
    p = Path(path)
    limit = limit or FILE_LIMITS.get(p.suffix.lower())
    if limit is None:
        return
    try:
        size = p.stat().st_size
    except OSError:
        return
    check_value(p, limit, size)


def check_zip(zf: zipfile.ZipFile, origin: object) -> None:
    """Refuse a zip bomb from its central directory, before anything is inflated.

    Checks the number of members, each member's declared uncompressed size and (above 1 MiB) its
    compression ratio, and the total uncompressed size.
    """
    infos = zf.infolist()
    check_value(origin, ARCHIVE_MEMBERS, len(infos))
    member_limit, ratio_limit, total_limit = (
        ARCHIVE_MEMBER_BYTES.value,
        ARCHIVE_RATIO.value,
        ARCHIVE_TOTAL_BYTES.value,
    )
    total = 0
    for info in infos:
        size = info.file_size
        if size > member_limit:
            raise exceeded(origin, ARCHIVE_MEMBER_BYTES, size, info.filename)
        if size > RATIO_FLOOR_BYTES and size > ratio_limit * max(info.compress_size, 1):
            ratio = size // max(info.compress_size, 1)
            raise exceeded(origin, ARCHIVE_RATIO, ratio, info.filename)
        total += size
        if total > total_limit:
            raise exceeded(origin, ARCHIVE_TOTAL_BYTES, total, "all members")


def open_zip(source: str | os.PathLike[str] | IO[bytes], origin: object) -> zipfile.ZipFile:
    """Open a zip and :func:`check_zip` it; a file that is not a zip raises :class:`zipfile.BadZipFile`."""
    try:
        zf = zipfile.ZipFile(source)
    except (NotImplementedError, EOFError, ValueError, OSError) as exc:  # a corrupt central directory
        raise zipfile.BadZipFile(" ".join(str(exc).split())) from None
    try:
        check_zip(zf, origin)
    except BaseException:
        zf.close()
        raise
    return zf


def read_member(zf: zipfile.ZipFile, name: str, origin: object, chunk: int = 1 * MIB) -> bytes:
    """Read one member, never more than its declared size nor :data:`ARCHIVE_MEMBER_BYTES`."""
    info = zf.getinfo(name)
    limit = min(info.file_size, ARCHIVE_MEMBER_BYTES.value)
    parts: list[bytes] = []
    got = 0
    try:
        with zf.open(info) as fh:
            while True:
                block = fh.read(min(chunk, limit + 1 - got))
                if not block:
                    break
                got += len(block)
                if got > limit:
                    raise exceeded(origin, ARCHIVE_MEMBER_BYTES, got, f"{name}, more than it declares")
                parts.append(block)
    except (
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        EOFError,
        OSError,
        ValueError,
        RuntimeError,
    ) as exc:
        if isinstance(exc, RuntimeError) and info.flag_bits & 0x1:  # zipfile: "password required"
            raise InputError(
                f"{origin}: the member {name} is encrypted; export the project again without a password"
            ) from None
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(
            f"{origin}: the member {name} cannot be read ({reason}); the archive is corrupt, export it again"
        ) from None
    return b"".join(parts)


def describe() -> list[tuple[str, str, str, str]]:
    """Every limit as (name, value in force, environment variable, what it bounds), for docs and ``--help``."""
    return [(lim.name, f"{lim.value} {lim.unit}", lim.env, lim.what) for lim in LIMITS.values()]
