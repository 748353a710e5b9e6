"""PDF transcripts: exact text and turns on hand-built PDFs, scans, broken and encrypted files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest import read_transcript
from tests.unit.test_ingest import check_offsets, seen


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: one Helvetica text line per entry, top to bottom (a page of no lines is a
    page without text, like a scan)."""
    objects: list[bytes] = []
    n_pages = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    font_id = 3 + 2 * n_pages
    for i, lines in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        ops = "".join(
            f"BT /F1 12 Tf 72 {720 - 20 * k} Td ({_escape(line)}) Tj ET\n" for k, line in enumerate(lines)
        )
        stream = ops.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for k, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % k + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pdf_labels_across_pages_and_page_numbers(tmp_path: Path) -> None:
    pdf = make_pdf(
        [
            ["Interview 6", "Interviewer: How long did it take?", "Ana: About a year, I think.", "1"],
            ["Page 2 of 2", "It was slow.", "Interviewer: Why (in short)?", "Ana: Caf\xe9 staff left."],
        ]
    )
    p = read_transcript(write(tmp_path, "int06.pdf", pdf))
    assert p.format == "pdf"
    assert p.text == (
        "Interview 6\nInterviewer: How long did it take?\nAna: About a year, I think.\n\n"
        "It was slow.\nInterviewer: Why (in short)?\nAna: Café staff left."
    )
    assert seen(p) == [
        ("", "Interview 6"),
        ("Interviewer", "How long did it take?"),
        ("Ana", "About a year, I think.\n\nIt was slow."),
        ("Interviewer", "Why (in short)?"),
        ("Ana", "Café staff left."),
    ]
    assert [(t.start, t.end) for t in p.turns] == [(0, 11), (25, 46), (52, 88), (102, 117), (123, 139)]
    check_offsets(p)


def test_a_scanned_pdf_has_no_text_layer(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        read_transcript(write(tmp_path, "scan.pdf", make_pdf([[], []])))
    assert str(err.value) == (
        f"{tmp_path / 'scan.pdf'}: the PDF has no text layer (a scan?); run OCR on it or export the "
        "transcript as .docx/.txt"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"x\.pdf: not a PDF file \(no '%PDF-' header\)"),
        (b"Interviewer: hi\n", r"x\.pdf: not a PDF file"),
        (b"PK\x03\x04 a zip", r"x\.pdf: not a PDF file"),
        (
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\ngarbage without objects\n",
            r"x\.pdf: not a readable \.pdf \(truncated or corrupt\?\)",
        ),
        (make_pdf([["Int: hi"]])[:60], r"x\.pdf: not a readable \.pdf"),
    ],
)
def test_broken_pdf_is_one_line(
    tmp_path: Path, data: bytes, message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InputError, match=message) as err:
        read_transcript(write(tmp_path, "x.pdf", data))
    assert "\n" not in str(err.value)
    assert capfd.readouterr().err == ""  # pypdf's warnings about the damage do not reach the terminal


def test_encrypted_pdf(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    plain = write(tmp_path, "plain.pdf", make_pdf([["Interviewer: hi", "Ana: ho"]]))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(InputError, match=r"locked\.pdf: the PDF is encrypted; save it without a password"):
        read_transcript(locked)
    # encrypted with an empty user password (opens without asking): read
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    opened = tmp_path / "opened.pdf"
    with opened.open("wb") as fh:
        writer.write(fh)
    assert seen(read_transcript(opened)) == [("Interviewer", "hi"), ("Ana", "ho")]


def test_a_pdf_bomb_is_refused_by_pypdfs_limit(tmp_path: Path) -> None:
    """A content stream inflating to 80 MB (80 KB on disk) stops at pypdf's 75 MB output limit."""
    import zlib

    base = make_pdf([["Int: hi"]])
    z = zlib.compress(b"0" * 80_000_000, 9)
    start, end = base.index(b"4 0 obj\n"), base.index(b"endobj", base.index(b"4 0 obj\n"))
    bomb = base[:start] + b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(z) + z
    bomb += b"endstream\n" + base[end:]
    with pytest.raises(InputError, match=r"bomb\.pdf: not a readable \.pdf .*LimitReachedError"):
        read_transcript(write(tmp_path, "bomb.pdf", bomb))
