"""OpenDocument text transcripts: exact text and turns on hand-built .odt files, broken input."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest import read_transcript
from tests.unit.test_ingest import check_offsets, seen

NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
)


def odt(path: Path, body: str, mimetype: str = "application/vnd.oasis.opendocument.text") -> Path:
    """An .odt as LibreOffice lays it out: ``mimetype`` first and stored, then ``content.xml``."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        z.writestr(
            "content.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {NS}><office:body>'
            f"<office:text>{body}</office:text></office:body></office:document-content>",
            compress_type=zipfile.ZIP_DEFLATED,
        )
        z.writestr("META-INF/manifest.xml", "<manifest/>")
    return path


def test_odt_labels_spans_spaces_lists_and_what_is_not_text(tmp_path: Path) -> None:
    body = (
        "<text:sequence-decls><text:sequence-decl text:name='Table'/></text:sequence-decls>"
        "<text:h text:outline-level='1'>Interview 4</text:h>"
        "<text:p><text:span text:style-name='T1'>Interviewer:</text:span> Was it the"
        "\n   café?<text:note><text:note-body><text:p>a footnote</text:p></text:note-body></text:note></text:p>"
        "<text:p/>"
        "<text:p>مصاحبه\u200cشونده: بله،<text:s/><text:s text:c='2'/>سخت."
        "<office:annotation><text:p>a comment</text:p></office:annotation></text:p>"
        "<text:list><text:list-item><text:p>first point<text:line-break/>second line</text:p></text:list-item>"
        "</text:list>"
        "<text:section><text:p>Interviewer:<text:tab/>And then?</text:p></text:section>"
        "<text:p><draw:frame><draw:text-box><text:p>a text box</text:p></draw:text-box></draw:frame>"
        "<text:a xlink:href='http://x' xmlns:xlink='http://www.w3.org/1999/xlink'>Nothing</text:a> more.</text:p>"
    )
    p = read_transcript(odt(tmp_path / "int04.odt", body))
    assert p.format == "odt"
    assert p.text == (
        "Interview 4\n\nInterviewer: Was it the café?\n\nمصاحبه\u200cشونده: بله،   سخت.\n\n"
        "first point\nsecond line\n\nInterviewer:\tAnd then?\n\nNothing more."
    )
    assert seen(p) == [
        ("", "Interview 4"),
        ("Interviewer", "Was it the café?"),
        ("مصاحبه\u200cشونده", "بله،   سخت.\n\nfirst point\nsecond line"),
        ("Interviewer", "And then?\n\nNothing more."),
    ]
    assert [(t.start, t.end) for t in p.turns] == [(0, 11), (26, 42), (58, 94), (109, 133)]
    check_offsets(p)


def test_odt_table_with_a_speaker_column(tmp_path: Path) -> None:
    def row(*cells: str) -> str:
        return (
            "<table:table-row>"
            + "".join(f"<table:table-cell>{c}</table:table-cell>" for c in cells)
            + "</table:table-row>"
        )

    body = (
        "<table:table><table:table-column/>"
        f"<table:table-header-rows>{row('<text:p>Speaker</text:p>', '<text:p>Text</text:p>')}</table:table-header-rows>"
        + row("<text:p>Int</text:p>", "<text:p>Why?</text:p>")
        + row("<text:p>P1</text:p>", "<text:p>Because.</text:p><text:p>Late.</text:p>")
        + row("<text:p>Int</text:p>", "<text:p>Ok.</text:p>")
        + "</table:table>"
    )
    p = read_transcript(odt(tmp_path / "t.odt", body))
    assert (
        p.text == "Speaker: Text\n\nInt: Why?\n\nP1: Because.\nLate.\n\nInt: Ok."
    )  # cell paragraphs: lines, as in .docx
    assert seen(p) == [("Speaker", "Text"), ("Int", "Why?"), ("P1", "Because.\nLate."), ("Int", "Ok.")]


def test_odt_speaker_headers(tmp_path: Path) -> None:
    body = "<text:p>Anna  0:03</text:p><text:p>Hello.</text:p><text:p>Ben  0:09</text:p><text:p>Hi.</text:p>"
    p = read_transcript(odt(tmp_path / "h.odt", body))
    assert [(t.speaker, t.timestamp, p.text[t.start : t.end]) for t in p.turns] == [
        ("Anna", 3.0, "Hello."),
        ("Ben", 9.0, "Hi."),
    ]


# --- bad input -------------------------------------------------------------------------------


def test_text_file_renamed_odt(tmp_path: Path) -> None:
    path = tmp_path / "fake.odt"
    path.write_text("Interviewer: hi", encoding="utf-8")
    with pytest.raises(InputError, match=r"fake\.odt: not a readable \.odt \(truncated or corrupt\?\)"):
        read_transcript(path)


def test_zip_that_is_not_an_odt(tmp_path: Path) -> None:
    path = tmp_path / "other.odt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match=r"other\.odt: not a readable \.odt .*\(it has no content\.xml\)"):
        read_transcript(path)


def test_a_spreadsheet_renamed_odt(tmp_path: Path) -> None:
    path = odt(tmp_path / "sheet.odt", "<text:p>x</text:p>", "application/vnd.oasis.opendocument.spreadsheet")
    with pytest.raises(
        InputError,
        match=r"sheet\.odt: not an OpenDocument text document \(its type is "
        r"'application/vnd\.oasis\.opendocument\.spreadsheet'\)",
    ):
        read_transcript(path)


def test_truncated_odt(tmp_path: Path) -> None:
    good = odt(tmp_path / "good.odt", "<text:p>Int: hi</text:p>" * 50)
    cut = tmp_path / "cut.odt"
    cut.write_bytes(good.read_bytes()[:150])
    with pytest.raises(InputError, match=r"cut\.odt: not a readable \.odt"):
        read_transcript(cut)


def test_broken_content_xml(tmp_path: Path) -> None:
    path = tmp_path / "bad.odt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("content.xml", "<office:document-content><text:p>unclosed")
    with pytest.raises(InputError, match=r"bad\.odt: not a readable \.odt .*\(content\.xml: unbound prefix"):
        read_transcript(path)


def test_entities_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "lol.odt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("content.xml", '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    with pytest.raises(InputError, match=r"lol\.odt: .*declares XML entities"):
        read_transcript(path)


def test_empty_odt(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"e\.odt: the document has no text"):
        read_transcript(odt(tmp_path / "e.odt", "<text:p/><text:p>  </text:p>"))


def test_an_unknown_xml_encoding_is_one_line(tmp_path: Path) -> None:
    """Found by bench/fuzz.py: an encoding name mangled in content.xml's declaration raised LookupError."""
    path = tmp_path / "enc.odt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("content.xml", f'<?xml version="1.0" encoding="UT"?><office:document-content {NS}/>')
    with pytest.raises(InputError, match=r"enc\.odt: not a readable \.odt .*\(content\.xml: .*encoding"):
        read_transcript(path)
