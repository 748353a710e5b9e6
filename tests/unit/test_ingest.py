"""Transcript readers: exact turns on tiny fixtures, bad input, and offset properties."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain import ParsedTranscript
from pipeline.errors import InputError
from pipeline.ingest import READERS, SUPPORTED_SUFFIXES, decode_bytes, read_transcript
from pipeline.ingest.plain import parse_plain_text
from pipeline.ingest.subtitles import parse_srt, parse_webvtt
from pipeline.ingest.word import parse_paragraphs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def seen(p: ParsedTranscript) -> list[tuple[str, str]]:
    """What a person sees: (speaker, words) per turn."""
    return [(t.speaker, p.text[t.start : t.end]) for t in p.turns]


def check_offsets(p: ParsedTranscript) -> None:
    previous_end = 0
    for t in p.turns:
        assert previous_end <= t.start < t.end <= len(p.text)
        words = p.text[t.start : t.end]
        assert words == words.strip()
        previous_end = t.end


# --- one fixture per format -------------------------------------------------------------------


def test_labelled_txt_keeps_raw_text_and_continuation_lines() -> None:
    path = FIXTURES / "interview.txt"
    p = read_transcript(path)
    assert p.text == path.read_text(encoding="utf-8")
    assert p.format == "txt"
    assert seen(p) == [
        ("", "Interview 7 (pilot), recorded 2024-03-05"),
        ("Interviewer", "Thanks for coming. How long have you worked here?"),
        ("Sam", "About six years.\nI started in the call centre,\nthen moved to claims."),
        ("Interviewer", "What changed when the new system arrived?"),
        ("Sam", "Everything, honestly: the forms, the queues."),
        ("Interviewer", "Was that hard?"),
    ]
    assert all(t.role == "unknown" and t.timestamp is None for t in p.turns)
    check_offsets(p)


def test_markdown_bold_labels() -> None:
    p = read_transcript(FIXTURES / "bold.md")
    assert p.format == "md"
    assert p.text == (FIXTURES / "bold.md").read_text(encoding="utf-8")
    assert seen(p) == [  # the heading "# Interview 4: policy adviser" is not speech: no turn
        ("Interviewer", "What do you do at the ministry?"),
        ("Farhad", "I draft positions.\nMostly on pensions."),
        ("Interviewer", "Since when?"),
        ("Farhad", "Since 2019."),
    ]


def test_otter_export() -> None:
    p = read_transcript(FIXTURES / "otter.txt")
    assert p.format == "otter"
    assert seen(p) == [
        ("Speaker 1", "Okay, we are recording. Can you hear me?"),
        ("Maria Lopez", "Yes, loud and clear."),
        ("Speaker 1", "Great. Let's start.\nSecond line of the same turn."),
    ]
    assert [t.timestamp for t in p.turns] == [0.0, 4.0, 3727.0]


def test_otter_single_space_before_time() -> None:
    p = parse_plain_text("Ann 0:01\nHi.\nBen 12:30\nHello.\n")
    assert p.format == "otter"
    assert seen(p) == [("Ann", "Hi."), ("Ben", "Hello.")]
    assert [t.timestamp for t in p.turns] == [1.0, 750.0]


TEAMS_TURNS = [
    ("Jane Doe", "0:03", "Thanks for joining. Could you tell me about your job?"),
    ("John Smith", "0:10", "Sure. I work as a nurse.\nThe shifts are long."),
    ("Jane Doe", "1:02", "What makes it hard?"),
    ("John Smith", "1:02:05", "Staffing mostly."),
]


def test_speaker_headers_with_bracketed_clocks_in_txt() -> None:
    text = (
        "Transcript\nMarch 5, 2025\n\n"
        "Interviewer [00:00:01]\nThanks for joining. How is work?\n\n"
        "Participant (00:00:10)\nBusy.\n\nVery busy.\n\n"
        "Interviewer [1:23]\nWhy?\n"
    )
    p = parse_plain_text(text)
    assert p.text == text
    assert p.format == "otter"
    assert seen(p) == [  # the preamble is a turn of unknown speaker, as before the first label
        ("", "Transcript\nMarch 5, 2025"),
        ("Interviewer", "Thanks for joining. How is work?"),
        ("Participant", "Busy.\n\nVery busy."),
        ("Interviewer", "Why?"),
    ]
    assert [t.timestamp for t in p.turns] == [None, 1.0, 10.0, 83.0]
    check_offsets(p)
    # times that go back are not headers: a list of events is prose
    assert [s for s, _ in seen(parse_plain_text("Lunch [12:30]\nWe ate.\nStart [09:00]\nWe met.\n"))] == [""]


@pytest.mark.parametrize("line_break", [False, True])
def test_teams_and_otter_docx_speaker_headers(tmp_path: Path, line_break: bool) -> None:
    import docx

    d = docx.Document()
    d.add_paragraph("Transcript")
    d.add_paragraph("March 5, 2025, 2:03PM")
    for name, clock, words in TEAMS_TURNS:
        if line_break:  # header and words in one paragraph, split by a line break
            para = d.add_paragraph()
            para.add_run(f"{name}   {clock}").add_break()
            para.add_run(words)
        else:  # the header is its own paragraph
            d.add_paragraph(f"{name}   {clock}")
            for part in words.split("\n"):
                d.add_paragraph(part)
    d.save(str(tmp_path / "teams.docx"))
    p = read_transcript(tmp_path / "teams.docx")
    sep = "\n" if line_break else "\n\n"
    assert p.text == "\n\n".join(  # the stored text is built as for any .docx
        ["Transcript", "March 5, 2025, 2:03PM"]
        + [f"{n}   {c}{sep}{w.replace(chr(10), chr(10) if line_break else sep)}" for n, c, w in TEAMS_TURNS]
    )
    assert p.format == "docx"
    assert seen(p) == [
        ("", "Transcript"),
        ("", "March 5, 2025, 2:03PM"),
        ("Jane Doe", "Thanks for joining. Could you tell me about your job?"),
        (
            "John Smith",
            "Sure. I work as a nurse." + ("\n" if line_break else "\n\n") + "The shifts are long.",
        ),
        ("Jane Doe", "What makes it hard?"),
        ("John Smith", "Staffing mostly."),
    ]
    assert [t.timestamp for t in p.turns] == [None, None, 3.0, 10.0, 62.0, 3725.0]
    check_offsets(p)


def test_persian_txt() -> None:
    p = read_transcript(FIXTURES / "persian.txt")
    assert seen(p) == [
        ("مصاحبه\u200cگر", "از کی در این سازمان کار می\u200cکنید؟"),
        ("مینا", "از سال ۱۳۸۵. اول در بخش بیمه بودم."),
        ("مصاحبه\u200cگر", "چه چیزی بیشتر از همه تغییر کرد؟"),
        ("مینا", "همه چیز، مخصوصاً سامانه\u200cها."),
    ]


def test_prose_with_one_note_label_is_paragraphs() -> None:
    p = read_transcript(FIXTURES / "paragraphs.txt")
    assert seen(p) == [
        ("", "We talked about the new pension rules for an hour.\nNote: the recorder failed at the start."),
        ("", "The participant described three reforms\nand how each one changed her daily work."),
    ]


def test_two_line_dialogue_is_labelled_and_single_prose_label_is_not() -> None:
    assert seen(parse_plain_text("A: hi\nB: hello")) == [("A", "hi"), ("B", "hello")]
    prose = "Summary: we met twice.\nThe first time it rained.\nThe second time too.\nWarning: noisy."
    assert [s for s, _ in seen(parse_plain_text(prose))] == [""]


def test_labels_with_timestamps() -> None:
    p = parse_plain_text("[00:00:05] Ann: Why?\n[00:01:10] Ben: Because.\nAnn (01:15): Ok.\n")
    assert seen(p) == [("Ann", "Why?"), ("Ben", "Because."), ("Ann", "Ok.")]
    assert [t.timestamp for t in p.turns] == [5.0, 70.0, 75.0]


def test_clock_after_the_label_is_the_timestamp_not_words() -> None:
    text = "**Interviewer:** [00:00:05] How is it?\n**Participant:** [00:00:09] I run it.\n"
    p = parse_plain_text(text, "md")
    assert seen(p) == [("Interviewer", "How is it?"), ("Participant", "I run it.")]
    assert [(t.start, t.end, t.timestamp) for t in p.turns] == [(28, 38, 5.0), (67, 76, 9.0)]
    p = parse_plain_text("Interviewer: (00:00:05) How is...\nAnn: (1:02:03.5) Fine.\nAnn: (sighs) ok\n")
    assert seen(p) == [("Interviewer", "How is..."), ("Ann", "Fine."), ("Ann", "(sighs) ok")]
    assert [t.timestamp for t in p.turns] == [5.0, 3723.5, None]
    # a clock before the colon wins; a second one after it is still not words
    p = parse_plain_text("Ann (00:07): [00:08] a\nAnn: b")
    assert [(t.timestamp, p.text[t.start : t.end]) for t in p.turns] == [(7.0, "a"), (None, "b")]
    assert seen(parse_paragraphs(["Int: [00:01] Why?", "Ali: (00:03) Hm."])) == [
        ("Int", "Why?"),
        ("Ali", "Hm."),
    ]
    srt = (
        "1\n00:00:01,000 --> 00:00:02,000\nBen: [00:00:01] Yes.\n\n2\n00:00:03,000 --> 00:00:04,000\nAnn: No."
    )
    assert seen(parse_srt(srt)) == [("Ben", "Yes."), ("Ann", "No.")]


def test_bare_labels_are_not_speech() -> None:
    assert seen(parse_plain_text("Interviewer:\n\nAnna: Fine.\n")) == [("Anna", "Fine.")]
    assert seen(parse_plain_text("Interviewer:\n\nWe talked.\n")) == [("", "We talked.")]
    p = parse_plain_text("Interviewer:\nHow are you?\nAnna:\nFine.\nInterviewer: Good.\n")
    assert seen(p) == [("Interviewer", "How are you?"), ("Anna", "Fine."), ("Interviewer", "Good.")]
    assert seen(parse_plain_text("Note:\nWe met twice.\n")) == [("", "We met twice.")]
    assert seen(parse_paragraphs(["Interviewer:", "Some words."])) == [("", "Some words.")]
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nInterviewer:\n\n00:03.000 --> 00:04.000\nWords.\n"
    assert seen(parse_webvtt(vtt)) == [("", "Words.")]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("label.txt", "Interviewer:\n"),
        ("labels.txt", "Interviewer:\n\nParticipant: \n"),
        ("stamp.txt", "Interviewer: [00:00:05]\n"),
        ("heading.md", "# Interview 5\n\n**Interviewer:**\n"),
    ],
)
def test_a_transcript_of_labels_only_is_refused(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: no text found \(speaker labels"):
        read_transcript(path)


def test_markdown_headings_are_no_turn_but_stay_in_the_text() -> None:
    text = "# Interview 5\n\nInterviewer: Why?\nAnn: Because.\n\n## Part 2\nA note here.\n\nAnn: Yes.\n#hashtag: x\n"
    p = parse_plain_text(text, "md")
    assert p.text == text
    assert seen(p) == [
        ("Interviewer", "Why?"),
        ("Ann", "Because."),
        ("", "A note here."),  # after a heading, before the next label: no speaker
        ("Ann", "Yes.\n#hashtag: x"),  # "#hashtag" is no heading (no space after #)
    ]
    assert [(t.start, t.end) for t in p.turns] == [(28, 32), (38, 46), (58, 70), (77, 93)]
    # in .txt a "#" line is words, as before
    assert seen(parse_plain_text("# Interview 5\n\nInt: Why?\nAnn: So.\n", "txt"))[0] == ("", "# Interview 5")
    # a paragraph-layout .md: headings are skipped, paragraphs stay
    assert seen(parse_plain_text("# Notes\nFirst para.\n\n### Sub\n\nSecond.\n", "md")) == [
        ("", "First para."),
        ("", "Second."),
    ]


@pytest.mark.parametrize("name", ["utf16le.txt", "utf16be.txt", "utf8bom.txt"])
def test_encodings_with_bom(name: str) -> None:
    p = read_transcript(FIXTURES / name)
    assert p.text == "Interviewer: Ça va? Zoë\nParticipant: Oui, très bien. ممنون\n"
    assert seen(p) == [("Interviewer", "Ça va? Zoë"), ("Participant", "Oui, très bien. ممنون")]


def test_docx_bold_labels_continuation_and_table() -> None:
    p = read_transcript(FIXTURES / "interview.docx")
    assert p.format == "docx"
    assert p.text == (
        "Interview 9 — notes\n\nInterviewer: How did the reform reach your office?\n\n"
        "Dr. Reza Karimi: Slowly. First a circular came.\n\nThen, months later, the software.\n\n"
        "Interviewer: And then?\n\nDr. Reza Karimi: Then we waited.\n\nInterviewer: Thank you."
    )
    assert seen(p) == [
        ("", "Interview 9 — notes"),
        ("Interviewer", "How did the reform reach your office?"),
        ("Dr. Reza Karimi", "Slowly. First a circular came.\n\nThen, months later, the software."),
        ("Interviewer", "And then?"),
        ("Dr. Reza Karimi", "Then we waited."),
        ("Interviewer", "Thank you."),
    ]


def test_docx_without_speakers_gives_one_turn_per_paragraph() -> None:
    p = read_transcript(FIXTURES / "plain.docx")
    assert p.text == "The first paragraph of field notes.\n\nA second paragraph: it has a colon."
    assert seen(p) == [
        ("", "The first paragraph of field notes."),
        ("", "A second paragraph: it has a colon."),
    ]


def test_docx_bold_label_allows_long_names() -> None:
    from pipeline.ingest.labels import Label

    name = "Dr. Maria José García López Ruiz"  # 6 words: too long for a plain label
    paras = ["Interviewer: Well?", f"{name}: Yes.", "No."]
    bold = [Label("Interviewer", 12, None), Label(name, len(name) + 1, None), None]
    p = parse_paragraphs(paras, bold)
    assert seen(p) == [("Interviewer", "Well?"), (name, "Yes.\n\nNo.")]
    assert seen(parse_paragraphs(paras)) == [("", "Interviewer: Well?"), ("", f"{name}: Yes."), ("", "No.")]


def test_vtt_voices_tags_notes_and_merge() -> None:
    p = read_transcript(FIXTURES / "interview.vtt")
    assert p.format == "vtt"
    assert p.text == (
        "Interviewer: How did it start?\nAna: It started with a letter & a call. Then nothing happened.\n"
        "[music]\nInterviewer: Really?"
    )
    assert seen(p) == [
        ("Interviewer", "How did it start?"),
        ("Ana", "It started with a letter & a call. Then nothing happened."),
        ("", "[music]"),
        ("Interviewer", "Really?"),
    ]
    assert [t.timestamp for t in p.turns] == [1.0, 4.0, 70.0, 72.5]


def test_srt_name_prefixes_merge() -> None:
    p = read_transcript(FIXTURES / "interview.srt")
    assert p.format == "srt"
    assert seen(p) == [
        ("Interviewer", "Where do you work?"),
        ("Leila", "At the provincial branch, for ten years. It is a small office."),
        ("Interviewer", "Do you like it?"),
    ]
    assert [t.timestamp for t in p.turns] == [1.0, 2.5, 8.0]


def test_srt_without_speakers_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "plain.srt"
    path.write_bytes(
        b"1\r\n00:00:01,000 --> 00:00:02,000\r\nHello\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nworld.\r\n"
    )
    p = read_transcript(path)
    assert p.text == "Hello world."
    assert seen(p) == [("", "Hello world.")]


def test_srt_cues_run_together_without_blank_line() -> None:
    srt = (
        "1\n00:00:01,000 --> 00:00:02,000\nAnn: hi\n"
        "2\n00:00:03,000 --> 00:00:04,000\nBen: ho\nthere\n"
        "3\n00:00:05,000 --> 00:00:06,000\nAnn: ok\n"
    )
    p = parse_srt(srt)
    assert seen(p) == [("Ann", "hi"), ("Ben", "ho there"), ("Ann", "ok")]
    assert [t.timestamp for t in p.turns] == [1.0, 3.0, 5.0]


def test_srt_timing_error_line_after_run_on() -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,000\nhi\n2\n00:00:03,000 --> 00:00:04,000\nho\n\n3\n00:00:xx,000 --> 1\n"
    with pytest.raises(InputError, match=r"z\.srt line 9: bad cue timing"):
        parse_srt(srt, "z.srt")


def test_vtt_several_voices_in_one_cue() -> None:
    p = parse_webvtt("WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ann>Yes?</v> <v Ben>No.</v>\n")
    assert seen(p) == [("Ann", "Yes?"), ("Ben", "No.")]
    assert [t.timestamp for t in p.turns] == [1.0, 1.0]


def test_suffix_dispatch_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "INTERVIEW.TXT"
    shutil.copy(FIXTURES / "interview.txt", path)
    assert read_transcript(path).format == "txt"
    assert (
        set(READERS)
        == set(SUPPORTED_SUFFIXES)
        == {".txt", ".md", ".docx", ".odt", ".rtf", ".pdf", ".vtt", ".srt", ".csv", ".tsv", ".xlsx"}
    )


# --- bad input -------------------------------------------------------------------------------


def test_unknown_suffix_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "notes.pages"
    path.write_bytes(b"PK")
    with pytest.raises(
        InputError, match=r"notes\.pages: unsupported file type '\.pages'; supported: \.csv, \.docx, \.md"
    ):
        read_transcript(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone\.txt: no such file"):
        read_transcript(tmp_path / "gone.txt")


def test_binary_file_named_txt(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(InputError, match=r"photo\.txt: contains NUL bytes"):
        read_transcript(path)


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\t ", b"\xef\xbb\xbf\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"empty\.txt: the file is empty"):
        read_transcript(path)


def test_latin1_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.md"
    path.write_bytes(b"Interviewer: caf\xe9?\nAnna: oui\n")
    with pytest.raises(
        InputError, match=r"latin\.md: not UTF-8 or UTF-16 text \(byte 0xe9 .*re-save it as UTF-8"
    ):
        read_transcript(path)


def test_truncated_docx(tmp_path: Path) -> None:
    path = tmp_path / "cut.docx"
    path.write_bytes((FIXTURES / "interview.docx").read_bytes()[:200])
    with pytest.raises(InputError, match=r"cut\.docx: not a readable \.docx \(truncated or corrupt\?\)"):
        read_transcript(path)


def test_text_file_renamed_docx(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    path.write_text("Interviewer: hi", encoding="utf-8")
    with pytest.raises(InputError, match=r"fake\.docx: not a readable \.docx"):
        read_transcript(path)


def test_zip_that_is_not_docx(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "other.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match=r"other\.docx: not a readable \.docx"):
        read_transcript(path)


def test_empty_docx(tmp_path: Path) -> None:
    import docx

    path = tmp_path / "blank.docx"
    docx.Document().save(str(path))
    with pytest.raises(InputError, match=r"blank\.docx: the document has no text"):
        read_transcript(path)


def test_vtt_broken_timestamp_names_line() -> None:
    with pytest.raises(
        InputError, match=r"broken\.vtt line 6: bad cue timing '00:00:0x\.000 --> 00:00:04\.000'"
    ):
        read_transcript(FIXTURES / "broken.vtt")


@pytest.mark.parametrize(
    ("vtt", "message"),
    [
        ("1\n00:01.000 --> 00:02.000\nhi\n", r"x\.vtt line 1: a WebVTT file must start with 'WEBVTT'"),
        ("WEBVTT\n\nhello\nthere\n", r"x\.vtt line 3: expected a cue"),
        ("WEBVTT\n\n00:05.000 --> 00:02.000\nhi\n", r"x\.vtt line 3: cue ends before it starts"),
        ("WEBVTT\n\nNOTE nothing else\n", r"x\.vtt: no subtitle cue with text"),
    ],
)
def test_vtt_structure_errors(vtt: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_webvtt(vtt, "x.vtt")


def test_srt_broken_timing_names_line() -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03;000 --> 00:00:04,000\nho\n"
    with pytest.raises(InputError, match=r"y\.srt line 6: bad cue timing"):
        parse_srt(srt, "y.srt")


def test_decode_bytes_rules() -> None:
    assert decode_bytes(b"a\r\nb\rc", "f.txt") == "a\nb\nc"
    assert decode_bytes("\ufeffx".encode("utf-16-be"), "f.txt") == "x"
    with pytest.raises(InputError, match=r"f\.txt: contains NUL"):
        decode_bytes("no bom".encode("utf-16-le"), "f.txt")
    with pytest.raises(InputError, match=r"f\.txt: not UTF-8 or UTF-16"):
        decode_bytes(b"\xff\xfe\x00\xd8", "f.txt")  # UTF-16 BOM, then a lone surrogate


# --- properties ------------------------------------------------------------------------------

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüçñøÇÉابپتثجچحخدذرزژسشصطعغفقکگلمنوهی"
WORD = st.builds(
    str.__add__,
    st.text(alphabet=LETTERS + "0123456789", min_size=1, max_size=6),
    st.sampled_from(["", ".", ",", "?", "؟", "!", "'s", "-"]),
)
NAME = st.lists(st.text(alphabet=LETTERS + "0123456789", min_size=1, max_size=7), min_size=1, max_size=3).map(
    " ".join
)


@st.composite
def labelled_transcripts(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A 'Name: words' transcript and the turns a person sees in it."""
    pool = draw(st.lists(NAME, min_size=2, max_size=3, unique_by=str.casefold))
    n = draw(st.integers(len(pool) + 1, 6))  # more turns than speakers: some label recurs
    bold = draw(st.booleans())
    lines: list[str] = []
    expected: list[tuple[str, str]] = []
    if draw(st.booleans()):  # a title before the first label is a turn of unknown speaker
        title = " ".join(draw(st.lists(WORD, min_size=1, max_size=4)))
        lines.append(f"{title}\n\n")
        expected.append(("", title))
    for _ in range(n):
        speaker = draw(st.sampled_from(pool))
        sentences = draw(
            st.lists(st.lists(WORD, min_size=1, max_size=5).map(" ".join), min_size=1, max_size=2)
        )
        words = "\n".join(sentences) if draw(st.booleans()) else " ".join(sentences)
        label = f"**{speaker}:**" if bold else f"{speaker}:"
        gap = draw(st.sampled_from(["\n", "\n\n", "\n \n"]))
        lines.append(f"{label}{draw(st.sampled_from([' ', '  ', chr(9)]))}{words}{gap}")
        expected.append((speaker, words))
    return "".join(lines), expected


@given(labelled_transcripts())
@settings(max_examples=60, deadline=None)
def test_property_labelled_offsets(case: tuple[str, list[tuple[str, str]]]) -> None:
    text, expected = case
    p = parse_plain_text(text)
    assert p.text == text
    assert seen(p) == expected
    check_offsets(p)


@given(labelled_transcripts())
@settings(max_examples=30, deadline=None)
def test_property_docx_paragraph_offsets(case: tuple[str, list[tuple[str, str]]]) -> None:
    _, expected = case
    paragraphs = [f"{speaker}: {words}" if speaker else words for speaker, words in expected]
    p = parse_paragraphs(paragraphs)
    assert seen(p) == expected
    check_offsets(p)


CLOCK_STYLES = ["  {}", "   {}", " {}", " [{}]", " ({}) ", "[{}]"]


@st.composite
def header_transcripts(draw: st.DrawFn) -> tuple[str | None, list[tuple[str, str, str, float]]]:
    """A preamble (or ``None``) and turns (speaker, header line, paragraphs joined by a blank line,
    seconds) of the speaker-header layout (Otter, Teams, ``Name [00:00:01]``)."""
    pool = draw(st.lists(NAME, min_size=1, max_size=3, unique_by=str.casefold))
    title = None
    if draw(st.booleans()):
        title = " ".join(draw(st.lists(WORD, min_size=1, max_size=4)))
    seconds = 0
    turns: list[tuple[str, str, str, float]] = []
    for _ in range(draw(st.integers(2, 6))):
        seconds += draw(st.integers(0, 4000))
        h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
        clock = f"{h}:{m:02d}:{s:02d}" if h or draw(st.booleans()) else f"{m}:{s:02d}"
        speaker = draw(st.sampled_from(pool))
        paragraphs = draw(
            st.lists(st.lists(WORD, min_size=1, max_size=6).map(" ".join), min_size=1, max_size=3)
        )
        header = speaker + draw(st.sampled_from(CLOCK_STYLES)).format(clock)
        turns.append((speaker, header, "\n\n".join(paragraphs), float(seconds)))
    return title, turns


@given(header_transcripts())
@settings(max_examples=60, deadline=None)
def test_property_speaker_headers_txt_and_docx(
    case: tuple[str | None, list[tuple[str, str, str, float]]],
) -> None:
    title, turns = case
    expected = ([("", title, None)] if title else []) + [(s, w, t) for s, _, w, t in turns]
    text = (f"{title}\n\n" if title else "") + "".join(f"{h}\n{w}\n\n" for _, h, w, _ in turns)
    p = parse_plain_text(text)
    assert p.text == text
    assert [(s, w, t.timestamp) for (s, w), t in zip(seen(p), p.turns, strict=True)] == expected
    check_offsets(p)
    # .docx: the header is its own paragraph, or the first line of the paragraph with the words
    for line_break in (False, True):
        paragraphs = [title] if title else []
        for _, header, words, _ in turns:
            first, *rest = words.split("\n\n")
            paragraphs += [f"{header}\n{first}", *rest] if line_break else [header, first, *rest]
        p = parse_paragraphs(paragraphs)
        assert p.text == "\n\n".join(paragraphs)
        assert [(s, w, t.timestamp) for (s, w), t in zip(seen(p), p.turns, strict=True)] == expected
        check_offsets(p)


@st.composite
def markdown_transcripts(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, float | None]]]:
    """A ``.md`` transcript with headings between turns and clocks after some labels, and the turns
    (speaker, words, timestamp) a person sees in it."""
    pool = draw(st.lists(NAME, min_size=2, max_size=3, unique_by=str.casefold))
    parts: list[str] = []
    expected: list[tuple[str, str, float | None]] = []
    for _ in range(draw(st.integers(len(pool) + 1, 6))):
        if draw(st.booleans()):
            hashes = "#" * draw(st.integers(1, 6))
            parts.append(f"{hashes} {' '.join(draw(st.lists(WORD, min_size=1, max_size=3)))}\n\n")
        speaker = draw(st.sampled_from(pool))
        words = " ".join(draw(st.lists(WORD, min_size=1, max_size=6)))
        seconds = draw(st.none() | st.integers(0, 5999))
        clock = "" if seconds is None else f"[{seconds // 60:02d}:{seconds % 60:02d}] "
        label = f"**{speaker}:**" if draw(st.booleans()) else f"{speaker}:"
        parts.append(f"{label} {clock}{words}\n" + draw(st.sampled_from(["", "\n"])))
        expected.append((speaker, words, None if seconds is None else float(seconds)))
    return "".join(parts), expected


@given(markdown_transcripts())
@settings(max_examples=60, deadline=None)
def test_property_markdown_headings_and_clocks(case: tuple[str, list[tuple[str, str, float | None]]]) -> None:
    text, expected = case
    p = parse_plain_text(text, "md")
    assert p.text == text
    assert [(s, w, t.timestamp) for (s, w), t in zip(seen(p), p.turns, strict=True)] == expected
    check_offsets(p)


@st.composite
def vtt_cues(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A WebVTT file with voiced and unvoiced cues, and the merged turns expected from it."""
    pool = draw(st.lists(NAME, min_size=1, max_size=3, unique_by=str))
    cues = draw(
        st.lists(
            st.tuples(st.one_of(st.none(), st.sampled_from(pool)), st.lists(WORD, min_size=1, max_size=8)),
            min_size=1,
            max_size=8,
        )
    )
    blocks = ["WEBVTT", "NOTE generated"]
    expected: list[tuple[str, str]] = []
    for i, (speaker, tokens) in enumerate(cues):
        cut = draw(st.integers(1, len(tokens)))
        payload = " ".join(tokens[:cut]) + ("\n" + " ".join(tokens[cut:]) if tokens[cut:] else "")
        if speaker is not None:
            payload = f"<v {speaker}>{payload}" + draw(st.sampled_from(["</v>", ""]))
        ident = f"cue-{i}\n" if draw(st.booleans()) else ""
        blocks.append(f"{ident}00:{i:02d}:00.000 --> 00:{i:02d}:01.500\n{payload}")
        words = " ".join(tokens)
        if expected and expected[-1][0] == (speaker or ""):
            expected[-1] = (expected[-1][0], expected[-1][1] + " " + words)
        else:
            expected.append((speaker or "", words))
    return "\n\n".join(blocks) + "\n", expected


@given(vtt_cues())
@settings(max_examples=60, deadline=None)
def test_property_vtt_merge_and_offsets(case: tuple[str, list[tuple[str, str]]]) -> None:
    vtt, expected = case
    p = parse_webvtt(vtt, "gen.vtt")
    assert seen(p) == expected
    check_offsets(p)
    assert p.text == "\n".join(f"{s}: {w}" if s else w for s, w in expected)
    times = [t.timestamp or 0.0 for t in p.turns]
    assert None not in [t.timestamp for t in p.turns]
    assert times == sorted(times)


@given(st.text(min_size=1).filter(lambda s: s.strip() and "\x00" not in s and not s.startswith("\ufeff")))
@settings(max_examples=100, deadline=None)
def test_property_decode_round_trip(text: str) -> None:
    folded = text.replace("\r\n", "\n").replace("\r", "\n")
    for data in (
        text.encode("utf-8"),
        b"\xef\xbb\xbf" + text.encode("utf-8"),
        b"\xff\xfe" + text.encode("utf-16-le"),
    ):
        try:
            assert decode_bytes(data, "p.txt") == folded
        except UnicodeEncodeError:  # lone surrogates cannot be encoded at all
            pass


def test_every_message_names_the_file(tmp_path: Path) -> None:
    for suffix in SUPPORTED_SUFFIXES:
        path = tmp_path / f"zero{suffix}"
        path.write_bytes(b"")
        with pytest.raises(InputError, match=re.escape(str(path))):
            read_transcript(path)


NOISE = st.lists(
    st.sampled_from(
        [
            "Ann",
            "Ben Li",
            ": ",
            ":",
            "**",
            " ",
            "\n",
            "\n\n",
            "0:01",
            "12:30",
            "-->",
            "\t",
            "?",
            "x",
            "ی",
            "<v Ann>",
            "</v>",
            "WEBVTT",
            "00:00:01.000",
            "# ",
            "[00:01] ",
            "(1:02:03) ",
            " [0:02]",
            "   1:02:03",
        ]
    ),
    max_size=40,
).map("".join)


@given(NOISE)
@settings(max_examples=60, deadline=None)
def test_property_any_text_gives_valid_turns(text: str) -> None:
    for fmt in ("txt", "md"):
        p = parse_plain_text(text, fmt)
        assert p.text == text
        check_offsets(p)
    paragraphs = [para for para in text.split("\n\n") if para.strip()]
    if paragraphs:  # as .docx paragraphs (speaker headers, labels or neither)
        p = parse_paragraphs(paragraphs)
        assert p.text == "\n\n".join(paragraphs)
        check_offsets(p)
    for parse in (parse_webvtt, parse_srt):
        try:
            check_offsets(parse(text, "n.vtt"))
        except InputError as exc:
            assert str(exc).startswith("n.vtt")


def test_a_labelled_transcript_keeps_its_labels_beside_two_name_and_clock_lines() -> None:
    """`Morning session (9:30)` / `Lunch 12:15` inside a `Name:` transcript are lines of a turn, not the
    speaker headers of an Otter or Teams export (.txt and .docx alike)."""
    from pipeline.ingest.plain import parse_plain_text
    from pipeline.ingest.word import parse_paragraphs

    p = parse_plain_text(
        "Interviewer: When did you arrive?\nAnna: We had two slots.\nMorning session (9:30)\n"
        "Afternoon session (14:00)\nInterviewer: And then?\nAnna: Nothing.\n"
    )
    assert [t.speaker for t in p.turns] == ["Interviewer", "Anna", "Interviewer", "Anna"]
    assert p.text[p.turns[1].start : p.turns[1].end].endswith("Afternoon session (14:00)")
    d = parse_paragraphs(
        [
            "Interviewer: When did you arrive?",
            "Anna: The schedule was",
            "Arrival 9:30",
            "Lunch 12:15",
            "Interviewer: And then?",
            "Anna: Nothing.",
        ]
    )
    assert [t.speaker for t in d.turns] == ["Interviewer", "Anna", "Interviewer", "Anna"]
