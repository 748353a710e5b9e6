"""Fuzz harnesses shared by ``tests/test_fuzz_readers.py`` (hypothesis) and ``bench/fuzz.py`` (long runs).

Every reader of untrusted files gets mutated bytes of a valid seed file. The contract: it returns, or
raises :class:`~pipeline.errors.InputError` whose message is one line; any other exception, or a
multi-line message, is a finding. For zip formats (``.docx``, ``.qdpx``) a mutation may also apply to
one member inside the archive, which is then zipped again, so the XML readers behind the zip layer
are reached too.
"""

from __future__ import annotations

import io
import random
import tempfile
import traceback
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
DEMO = ROOT / "data" / "demo"

# (kind, position, length, payload): kind 0 flip a byte, 1 insert, 2 delete, 3 truncate, 4 duplicate a slice,
# 5 replace with an "interesting" token
Mutation = tuple[int, int, int, bytes]
TOKENS: tuple[bytes, ...] = (
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\r",
    b"\n\n",
    b":",
    b",",
    b'"',
    b"-->",
    b"99999999999999999999",
    b"-1",
    b"&amp;",
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"*a",
    b"&a ",
    b"{",
    b"[",
    b"\xc3",
    b"\xd8\xb3",
    b"\t",
    b"=",
)


def mutate(data: bytes, mutations: Sequence[Mutation]) -> bytes:
    """Apply ``mutations`` in order (positions wrap around the current length)."""
    buf = bytearray(data)
    for kind, pos, length, payload in mutations:
        n = len(buf)
        p = pos % (n + 1)
        if kind == 0 and n:
            buf[p % n] ^= 1 << (length % 8)
        elif kind == 1:
            buf[p:p] = payload
        elif kind == 2:
            del buf[p : p + length]
        elif kind == 3:
            del buf[p:]
        elif kind == 4:
            buf[p:p] = buf[p : p + length]
        elif kind == 5:
            token = TOKENS[length % len(TOKENS)]
            buf[p : p + len(token)] = token
    return bytes(buf)


def mutate_member(data: bytes, member_index: int, mutations: Sequence[Mutation]) -> bytes:
    """Mutate one member of the zip ``data`` and zip it again (other members unchanged)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        infos = src.infolist()
        target = member_index % len(infos)
        for i, info in enumerate(infos):
            body = src.read(info)
            dst.writestr(info.filename, mutate(body, mutations) if i == target else body)
    return out.getvalue()


@cache
def _demo_sources() -> dict[str, str]:
    from pipeline.ingest import read_transcript

    return {p.stem: read_transcript(p).text for p in sorted((DEMO / "transcripts").glob("*.txt"))}


@cache
def _demo_codebook() -> Any:
    return read_codebook(DEMO / "codebook.yaml")


def read_codebook(path: Path) -> Any:
    try:
        from pipeline.codebook_files import read_codebook as reader
    except ImportError:  # the codebook readers are moving to pipeline.codebook_files
        from pipeline.codebook_files import read_codebook as reader  # type: ignore[import-not-found,no-redef]
    return reader(path)


def _codebook_csv_seed() -> bytes:
    try:
        from pipeline.codebook_files import codebook_to_csv
    except ImportError:
        from pipeline.codebook_files import codebook_to_csv  # type: ignore[import-not-found,no-redef]
    return codebook_to_csv(_demo_codebook()).encode("utf-8")


def _read_transcript(path: Path) -> Any:
    from pipeline.ingest import read_transcript

    return read_transcript(path)


def _read_codings(path: Path) -> Any:
    from pipeline.codings_csv import read_codings_csv

    return read_codings_csv(path, _demo_codebook(), _demo_sources())


def _read_metadata(path: Path) -> Any:
    from pipeline.ingest.metadata import read_metadata_csv

    return read_metadata_csv(path)


def _read_qdpx(path: Path) -> Any:
    from pipeline.refi.qdpx import import_qdpx

    return import_qdpx(path)


def _transcript_csv_seed() -> bytes:
    return (
        b'Speaker,Time,Utterance\nInterviewer,0:01,How is work?\nNurse,00:00:04.5,"Busy, as ever.\nShort of staff."\n'
        b"Nurse,,\nInterviewer,12,Why?\n"
    )


def _xlsx_seed() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in (
        ["Who", "Start", "Text"],
        ["Int", 1.5, "How is work?"],
        ["P1", None, "Busy."],
        [None, None, 42],
    ):
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _rtf_seed() -> bytes:
    from tests.unit.test_ingest_rtf import WORD_RTF

    return WORD_RTF


def _odt_seed() -> bytes:
    from tests.unit.test_ingest_odt import odt

    body = (
        "<text:h>Interview</text:h><text:p>Int: <text:span>Why</text:span>?<text:s text:c='2'/></text:p>"
        "<text:list><text:list-item><text:p>P1: Because.<text:line-break/>Then.<text:tab/></text:p>"
        "</text:list-item></text:list><table:table><table:table-row><table:table-cell><text:p>Int</text:p>"
        "</table:table-cell><table:table-cell><text:p>Ok?</text:p></table:table-cell></table:table-row>"
        "</table:table>"
    )
    with tempfile.TemporaryDirectory() as d:
        return odt(Path(d) / "seed.odt", body).read_bytes()


def _pdf_seed() -> bytes:
    from tests.unit.test_ingest_pdf import make_pdf

    return make_pdf(
        [["Interviewer: How is work?", "Nurse: Busy.", "1"], ["Interviewer: Why?", "Nurse: Staff."]]
    )


def _codings_seed() -> bytes:
    lines = (DEMO / "codings.csv").read_bytes().splitlines(keepends=True)
    return b"".join(lines[:15])


@dataclass(frozen=True)
class Target:
    """One reader under fuzz: its name, the suffix its files need, a seed and the function to call."""

    name: str
    suffix: str
    seed: Callable[[], bytes]
    read: Callable[[Path], Any]
    is_zip: bool = False


def _file(path: Path) -> Callable[[], bytes]:
    return path.read_bytes


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("txt", ".txt", _file(FIXTURES / "ingest" / "interview.txt"), _read_transcript),
        Target("md", ".md", _file(FIXTURES / "ingest" / "bold.md"), _read_transcript),
        Target("otter", ".txt", _file(FIXTURES / "ingest" / "otter.txt"), _read_transcript),
        Target("docx", ".docx", _file(FIXTURES / "ingest" / "interview.docx"), _read_transcript, is_zip=True),
        Target("vtt", ".vtt", _file(FIXTURES / "ingest" / "interview.vtt"), _read_transcript),
        Target("srt", ".srt", _file(FIXTURES / "ingest" / "interview.srt"), _read_transcript),
        Target("transcript_csv", ".csv", _transcript_csv_seed, _read_transcript),
        Target("xlsx", ".xlsx", _xlsx_seed, _read_transcript, is_zip=True),
        Target("rtf", ".rtf", _rtf_seed, _read_transcript),
        Target("odt", ".odt", _odt_seed, _read_transcript, is_zip=True),
        Target("pdf", ".pdf", _pdf_seed, _read_transcript),
        Target("codebook_yaml", ".yaml", _file(DEMO / "codebook.yaml"), read_codebook),
        Target("codebook_csv", ".csv", _codebook_csv_seed, read_codebook),
        Target("qdc", ".qdc", _file(FIXTURES / "refi" / "foreign.qdc"), read_codebook),
        Target("qdpx", ".qdpx", _file(FIXTURES / "refi" / "maxqda_like.qdpx"), _read_qdpx, is_zip=True),
        Target("codings_csv", ".csv", _codings_seed, _read_codings),
        Target("metadata_csv", ".csv", _file(FIXTURES / "ingest" / "metadata.csv"), _read_metadata),
    )
}


@cache
def seed_of(name: str) -> bytes:
    return TARGETS[name].seed()


@dataclass(frozen=True)
class Outcome:
    """What one execution gave: ``ok``, ``input_error`` or a finding (its kind and where it was raised)."""

    result: str
    finding: str | None = None
    detail: str = ""


def run_one(name: str, data: bytes, workdir: Path | None = None) -> Outcome:
    """Write ``data`` to a file of the target's suffix and read it; classify the outcome."""
    target = TARGETS[name]
    with tempfile.TemporaryDirectory(dir=workdir) as d:
        path = Path(d) / f"fuzz{target.suffix}"
        path.write_bytes(data)
        try:
            target.read(path)
        except InputError as exc:
            msg = str(exc)
            if "\n" in msg or not msg.strip():
                return Outcome("finding", "InputError with a multi-line or empty message", msg[:500])
            return Outcome("input_error")
        except RecursionError:
            return Outcome("finding", "RecursionError", "")
        except Exception as exc:  # the contract: nothing else may escape a reader
            tb = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in tb if "/pipeline/" in f.filename or "/review/" in f.filename]
            where = ours[-1] if ours else tb[-1]
            key = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}"
            return Outcome("finding", key, f"{exc!s}"[:500])
    return Outcome("ok")


def random_case(name: str, rng: random.Random) -> bytes:
    """A random mutation of the target's seed (used by ``bench/fuzz.py``)."""
    muts: list[Mutation] = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.randint(0, 5)
        payload = rng.choice(TOKENS) if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 8))
        muts.append((kind, rng.randint(0, 1 << 20), rng.randint(0, 64), payload))
    seed = seed_of(name)
    if TARGETS[name].is_zip and rng.random() < 0.7:
        return mutate_member(seed, rng.randint(0, 99), muts)
    return mutate(seed, muts)
