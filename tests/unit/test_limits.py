"""Zip bombs and oversized files: refused before they are read, in bounded memory, with one clear line.

Every hostile file is generated here (never committed): a member of zeros streamed through deflate, or a
small member whose declared size is patched in the central directory.
"""

from __future__ import annotations

import io
import resource
import struct
import zipfile
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest import read_transcript
from pipeline.limits import LIMITS, MIB, describe, read_member
from pipeline.refi.qdpx import import_qdpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def zip_with_zeros(path: Path, member: str, n_bytes: int, *, others: dict[str, bytes] | None = None) -> Path:
    """A zip whose ``member`` inflates to ``n_bytes`` zeros (streamed, so building it needs little memory)."""
    block = bytes(MIB)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in (others or {}).items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo(member)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=n_bytes > 2**31) as fh:
            left = n_bytes
            while left > 0:
                fh.write(block[: min(left, len(block))])
                left -= len(block)
    return path


def declare_size(path: Path, member: str, declared: int) -> None:
    """Patch ``member``'s uncompressed size in the central directory (and its local header) to ``declared``."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    # central directory entry: signature PK\1\2, uncompressed size at offset 24, name at offset 46
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) != -1:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46 : pos + 46 + n]) == name:
            struct.pack_into("<I", data, pos + 24, declared)
        pos += 4
    path.write_bytes(bytes(data))


def docx_fixture() -> bytes:
    return (FIXTURES / "ingest" / "interview.docx").read_bytes()


def qdpx_fixture() -> Path:
    found = sorted((FIXTURES / "refi").glob("*.qdpx"))
    assert found, "no .qdpx fixture"
    return found[0]


def rebuilt_with_bomb(src: bytes, tmp: Path, bomb_member: str, n_bytes: int, suffix: str) -> Path:
    """``src`` (a zip) with ``bomb_member`` replaced by ``n_bytes`` zeros."""
    others: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(src)) as zf:
        for name in zf.namelist():
            if name.lower() != bomb_member.lower():
                others[name] = zf.read(name)
    return zip_with_zeros(tmp / f"bomb{suffix}", bomb_member, n_bytes, others=others)


# ---------------------------------------------------------------------------- the limits themselves


def test_every_limit_names_its_env_var_and_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {row[0] for row in describe()}
    assert {"archive_member_bytes", "archive_total_bytes", "archive_ratio", "archive_members"} <= names
    lim = LIMITS["archive_member_bytes"]
    assert lim.env == "QUALFLOW_LIMIT_ARCHIVE_MEMBER_BYTES"
    monkeypatch.setenv(lim.env, "1_000")
    assert lim.value == 1000
    monkeypatch.setenv(lim.env, "lots")
    with pytest.raises(InputError, match="QUALFLOW_LIMIT_ARCHIVE_MEMBER_BYTES='lots' is not a whole number"):
        _ = lim.value


# ---------------------------------------------------------------------------- .docx


def test_docx_bomb_is_refused_with_a_low_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALFLOW_LIMIT_ARCHIVE_MEMBER_BYTES", str(1 * MIB))
    bomb = rebuilt_with_bomb(docx_fixture(), tmp_path, "word/document.xml", 4 * MIB, ".docx")
    with pytest.raises(InputError) as err:
        read_transcript(bomb)
    msg = str(err.value)
    assert "\n" not in msg and str(bomb) in msg and "word/document.xml" in msg
    assert "archive_member_bytes = 1048576" in msg and "QUALFLOW_LIMIT_ARCHIVE_MEMBER_BYTES" in msg


def test_docx_bomb_is_refused_at_default_limits_in_bounded_memory(tmp_path: Path) -> None:
    bomb = rebuilt_with_bomb(docx_fixture(), tmp_path, "word/document.xml", 300 * MIB, ".docx")
    assert bomb.stat().st_size < 2 * MIB  # a small file ...
    before = peak_rss_mib()
    with pytest.raises(InputError, match="over the limit archive_(member_bytes|ratio)"):
        read_transcript(bomb)  # ... that would inflate to 300 MiB
    assert peak_rss_mib() - before < 50


def test_docx_declaring_4_gib_is_refused_without_reading(tmp_path: Path) -> None:
    path = rebuilt_with_bomb(docx_fixture(), tmp_path, "word/document.xml", 2 * MIB, ".docx")
    declare_size(path, "word/document.xml", 0xFFFFFFF0)
    with pytest.raises(InputError, match=r"word/document.xml\) is 4294967280 bytes, over the limit"):
        read_transcript(path)


def test_a_good_docx_still_reads() -> None:
    assert read_transcript(FIXTURES / "ingest" / "interview.docx").turns


# ---------------------------------------------------------------------------- .qdpx


def qdpx_qde_name(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return next(n for n in zf.namelist() if n.lower().endswith(".qde"))


def test_qdpx_bomb_is_refused_at_default_limits_in_bounded_memory(tmp_path: Path) -> None:
    src = qdpx_fixture()
    bomb = rebuilt_with_bomb(src.read_bytes(), tmp_path, qdpx_qde_name(src), 300 * MIB, ".qdpx")
    before = peak_rss_mib()
    with pytest.raises(InputError) as err:
        import_qdpx(bomb)
    assert peak_rss_mib() - before < 50
    msg = str(err.value)
    assert "\n" not in msg and str(bomb) in msg and "QUALFLOW_LIMIT_ARCHIVE_" in msg


def test_qdpx_total_and_member_count_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = qdpx_fixture()
    monkeypatch.setenv("QUALFLOW_LIMIT_ARCHIVE_TOTAL_BYTES", "1000")
    with pytest.raises(InputError, match="over the limit archive_total_bytes = 1000 bytes"):
        import_qdpx(src)
    monkeypatch.delenv("QUALFLOW_LIMIT_ARCHIVE_TOTAL_BYTES")
    monkeypatch.setenv("QUALFLOW_LIMIT_ARCHIVE_MEMBERS", "1")
    with pytest.raises(InputError, match="over the limit archive_members = 1 members"):
        import_qdpx(src)
    monkeypatch.delenv("QUALFLOW_LIMIT_ARCHIVE_MEMBERS")
    assert import_qdpx(src).sources  # the real file is fine at the defaults


def test_qdpx_declaring_4_gib_is_refused_without_reading(tmp_path: Path) -> None:
    src = qdpx_fixture()
    qde = qdpx_qde_name(src)
    path = rebuilt_with_bomb(src.read_bytes(), tmp_path, qde, 2 * MIB, ".qdpx")
    declare_size(path, qde, 0xFFFFFFF0)
    with pytest.raises(InputError, match="is 4294967280 bytes, over the limit archive_member_bytes"):
        import_qdpx(path)


def test_read_member_stops_at_the_declared_size(tmp_path: Path) -> None:
    path = zip_with_zeros(tmp_path / "z.zip", "m", 3 * MIB)
    with zipfile.ZipFile(path) as zf:  # (check_zip would refuse its ratio: zeros compress 1000:1)
        assert len(read_member(zf, "m", path)) == 3 * MIB


def test_oversized_text_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUALFLOW_LIMIT_TEXT_FILE_BYTES", "100")
    path = tmp_path / "long.txt"
    path.write_text("A: " + "word " * 50 + "\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=r"long.txt: size of a .txt/.md/.vtt/.srt/.rtf transcript file is 254 bytes"
    ):
        read_transcript(path)


def test_oversized_csv_and_qdc_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.codings_csv import read_codings_csv
    from pipeline.domain import Codebook
    from pipeline.ingest.metadata import read_metadata_csv
    from pipeline.refi.qdc import read_qdc

    monkeypatch.setenv("QUALFLOW_LIMIT_CSV_FILE_BYTES", "50")
    monkeypatch.setenv("QUALFLOW_LIMIT_CODEBOOK_FILE_BYTES", "50")
    csv_path = tmp_path / "big.csv"
    csv_path.write_text("source,start,end,code,coder\n" + "a,0,1,x,y\n" * 10, encoding="utf-8")
    with pytest.raises(
        InputError, match="big.csv: size of a codings, metadata or transcript CSV/TSV file is 128 bytes"
    ):
        read_codings_csv(csv_path, Codebook(codes=[]), {})
    with pytest.raises(InputError, match="QUALFLOW_LIMIT_CSV_FILE_BYTES"):
        read_metadata_csv(csv_path)
    with pytest.raises(InputError, match="over the limit codebook_file_bytes = 50 bytes"):
        read_qdc(FIXTURES / "refi" / "foreign.qdc")


def test_an_encrypted_member_is_one_line(tmp_path: Path) -> None:
    """Found by the 30-minute fuzz run: zipfile raises RuntimeError for an encrypted member."""
    import zipfile

    from pipeline.limits import read_member

    path = tmp_path / "locked.qdpx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", b"<Project/>")
    data = bytearray(path.read_bytes())  # set the "encrypted" flag bit in both headers
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + flag_at
        data[at] |= 0x1
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf, pytest.raises(InputError, match="project.qde is encrypted; export"):
        read_member(zf, "project.qde", path)
