"""RTF transcripts: exact text and turns on hand-written and Word-like RTF, broken input, offsets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.ingest import read_transcript
from pipeline.ingest.rtf import rtf_paragraphs
from tests.unit.test_ingest import check_offsets, seen

# what Word writes, cut down: font/colour/style tables, info, generator, \'hh in code page 1252,
# Persian as \uN with a \'hh fallback (\uc1), a bold label in its own group, a field, a picture
WORD_RTF = rb"""{\rtf1\adeflang1025\ansi\ansicpg1252\uc1\adeff0\deff0\stshfdbch0\deflang1033\themelangcs1065
{\fonttbl{\f0\fbidi \froman\fcharset0\fprq2{\*\panose 02020603050405020304}Times New Roman;}
{\f1\fbidi \fswiss\fcharset178\fprq2 Tahoma;}}
{\colortbl;\red0\green0\blue0;}{\stylesheet{\ql \li0\ri0 \rtlch\fcs1 \af0\afs24 \snext0 Normal;}}
{\*\generator Microsoft Word 16;}{\info{\title Interview 3}{\author Sara}}
\pard\plain \ltrpar\ql \rtlch\fcs1 \af0 {\b Interviewer:}{ Was it the caf\'e9 or the th\'e9\'e2tre?\par }
\pard {\f1 \u1605\'e3\u1589\'d5\u1575\'c7\u1581\'cd\u1576\'c8\u1607\'e5\u8204\'9d\u1588\'d4\u1608\'e6\u1606\'e4\u1583\'cf\u1607\'e5: \u1576\'c8\u1604\'e1\u1607\'e5\u1548\'a1 \'ab\u1587\'d3\u1582\'ce\u1578\'ca\'bb.}\par
{\pict\pngblip 89504e470d0a1a0a}
\pard Interviewer: And then?\line {\field{\*\fldinst { HYPERLINK "http://x" }}{\fldrslt {Tell me}}} more.\par
\pard \par
Emoji \u-10179?\u-8704? ok\par
}"""


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_word_rtf_labels_accents_persian_and_fields(tmp_path: Path) -> None:
    p = read_transcript(write(tmp_path, "int03.rtf", WORD_RTF))
    assert p.format == "rtf"
    assert p.text == (
        "Interviewer: Was it the café or the théâtre?\n\n"
        "مصاحبه\u200cشونده: بله، «سخت».\n\n"
        "Interviewer: And then?\nTell me more.\n\n"
        "Emoji 😀 ok"
    )
    assert seen(p) == [
        ("Interviewer", "Was it the café or the théâtre?"),
        ("مصاحبه\u200cشونده", "بله، «سخت»."),
        ("Interviewer", "And then?\nTell me more.\n\nEmoji 😀 ok"),
    ]
    assert [(t.start, t.end) for t in p.turns] == [(13, 44), (60, 71), (86, 121)]
    check_offsets(p)


def test_hand_written_rtf_paragraphs_without_labels(tmp_path: Path) -> None:
    rtf = rb"{\rtf1\ansi First paragraph,\par second\tab one \{braces\}.\par\par Third\~one\emdash done.\par}"
    p = read_transcript(write(tmp_path, "notes.rtf", rtf))
    assert p.text == "First paragraph,\n\nsecond\tone {braces}.\n\nThird\u00a0one\u2014done."
    assert seen(p) == [
        ("", "First paragraph,"),
        ("", "second\tone {braces}."),
        ("", "Third\u00a0one\u2014done."),
    ]


def test_rtf_speaker_headers_like_otter(tmp_path: Path) -> None:
    rtf = rb"{\rtf1\ansi Anna  0:03\par Hello there.\par Ben  1:02\par Hi.\par}"
    p = read_transcript(write(tmp_path, "otter.rtf", rtf))
    assert [(t.speaker, t.timestamp, p.text[t.start : t.end]) for t in p.turns] == [
        ("Anna", 3.0, "Hello there."),
        ("Ben", 62.0, "Hi."),
    ]


def test_rtf_table_with_a_speaker_column(tmp_path: Path) -> None:
    rtf = (
        rb"{\rtf1\ansi Interview 2\par"
        rb"\trowd\cellx1000\cellx5000\pard\intbl Interviewer\cell Why?\cell\row"
        rb"\trowd\cellx1000\cellx5000\pard\intbl P1:\cell Because\par it was late.\cell\row"
        rb"\trowd\cellx1000\cellx5000\pard\intbl Interviewer\cell And?\cell\row"
        rb"\pard After the table.\par}"
    )
    p = read_transcript(write(tmp_path, "table.rtf", rtf))
    assert p.text == (
        "Interview 2\n\nInterviewer: Why?\n\nP1: Because\nit was late.\n\nInterviewer: And?\n\nAfter the table."
    )
    assert seen(p) == [  # as in .docx, a paragraph after a labelled one continues its turn
        ("", "Interview 2"),
        ("Interviewer", "Why?"),
        ("P1", "Because\nit was late."),
        ("Interviewer", "And?\n\nAfter the table."),
    ]


def test_code_pages_from_ansicpg_and_fcharset() -> None:
    cyr = rb"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2\par}"
    assert rtf_paragraphs(cyr) == ["Привет"]
    arabic_font = rb"{\rtf1\ansi\deff0{\fonttbl{\f0\fcharset178 Tahoma;}{\f1\fcharset0 Arial;}}\'d3\'e1\'c7\'e3 {\f1 caf\'e9}\par}"
    assert rtf_paragraphs(arabic_font) == ["سلام café"]
    gbk = rb"{\rtf1\ansi\ansicpg936 \'c4\'e3\'ba\'c3\par}"  # two bytes per character, decoded together
    assert rtf_paragraphs(gbk) == ["你好"]
    uc2 = rb"{\rtf1\ansi\uc2\u20320\'c4\'e3\u22909 ab\par}"  # \uc2: two fallback characters skipped
    assert rtf_paragraphs(uc2) == ["你好"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"x\.rtf: not an RTF file \(it does not start with '\{\\rtf'\)"),
        (b"Interviewer: hi\n", r"x\.rtf: not an RTF file"),
        (b"PK\x03\x04\x00\x00", r"x\.rtf: not an RTF file"),
        (
            WORD_RTF[: len(WORD_RTF) // 2],
            r"x\.rtf: not a readable \.rtf: the file ends before the document does",
        ),
        (b"{\\rtf1 \\bin999 ab}", r"x\.rtf: not a readable \.rtf: the file ends before"),
        (b"{\\rtf1{\\fonttbl{\\f0 Arial;}}\\par}", r"x\.rtf: the document has no text"),
        (b"{\\rtf1 Interviewer:\\par}", r"x\.rtf: no text found"),
    ],
)
def test_broken_rtf(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_transcript(write(tmp_path, "x.rtf", data))


def test_text_after_the_document_is_ignored(tmp_path: Path) -> None:
    p = read_transcript(write(tmp_path, "x.rtf", b"{\\rtf1 A: hi\\par B: ho\\par}}\x00junk"))
    assert seen(p) == [("A", "hi"), ("B", "ho")]


GARBLE = st.lists(
    st.sampled_from(
        [
            "{",
            "}",
            "\\par ",
            "\\line ",
            "\\'e9",
            "\\'zz",
            "\\u1601?",
            "\\u-10179?",
            "\\uc0 ",
            "\\uc2 ",
            "\\*",
            "\\fonttbl ",
            "\\bin2 ",
            "\\cell ",
            "\\row ",
            "\\intbl ",
            "\\pard ",
            "Ann: ",
            "x",
            " ",
            "\\",
            "\n",
            "\\~",
        ]
    ),
    max_size=40,
).map("".join)


@given(GARBLE)
@settings(max_examples=150, deadline=None)
def test_property_garbled_rtf_reads_or_is_one_line(body: str) -> None:
    data = ("{\\rtf1\\ansi " + body + "}").encode("latin-1")
    try:
        paragraphs = rtf_paragraphs(data, "g.rtf")
    except InputError as exc:
        assert str(exc).startswith("g.rtf: ") and "\n" not in str(exc)
        return
    assert all(p and p == p.strip() and "\x00" not in p for p in paragraphs)
    assert all(not 0xD800 <= ord(c) < 0xE000 for p in paragraphs for c in p)  # no lone surrogate
    if paragraphs:
        from pipeline.ingest.word import parse_paragraphs

        check_offsets(parse_paragraphs(paragraphs, fmt="rtf"))


def test_a_unicode_escape_no_character_has_is_a_replacement_character() -> None:
    """Found by bench/fuzz.py: \\u with a number past U+10FFFF (or past a C int) raised from chr()."""
    assert rtf_paragraphs(rb"{\rtf1 a\u1114112?b\u9999999999?c\u-70000?d\par}") == ["a\ufffdb\ufffdc\ufffdd"]


def test_what_word_and_libreoffice_write_around_the_text_is_not_text() -> None:
    """From a review: list numbers and bullets (Word's \\listtext, older \\pntext) hid the speaker label,
    a font name LibreOffice writes as \\uN leaked into the first turn, a shape's fallback text doubled."""
    listed = rb"{\rtf1\ansi {\listtext\pard\plain 1.\tab}Int: Why?\par{\pntext\'b7\tab}P1: Yes.\par}"
    assert rtf_paragraphs(listed) == ["Int: Why?", "P1: Yes."]
    font = (
        rb"{\rtf1\ansi{\fonttbl{\f0\fnil\fcharset134 \u23435\'3f\u20307\'3f;}}\f0 Int: Why?\par P1: Yes.\par}"
    )
    assert rtf_paragraphs(font) == ["Int: Why?", "P1: Yes."]
    shape = rb"{\rtf1\ansi A{\shp{\*\shpinst x}{\shprslt fallback}}B\par}"
    assert rtf_paragraphs(shape) == ["AB"]


def test_a_negative_bin_is_no_binary_run() -> None:
    """From a review: \\bin-7 moved the parser back to the start of its own token, for ever."""
    assert rtf_paragraphs(rb"{\rtf1\ansi \bin-7 abc\par}") == ["abc"]
    assert rtf_paragraphs(rb"{\rtf1\ansi \bin0 abc\par}") == ["abc"]
