"""Utterance tables (.csv, .tsv, .xlsx): exact text and turns on tiny fixtures, bad input, offsets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.ingest import is_transcript, read_transcript
from pipeline.ingest.tables import parse_table
from tests.unit.test_ingest import check_offsets, seen


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_csv_one_turn_per_row_with_speaker_and_time(tmp_path: Path) -> None:
    path = tmp_path / "int01.csv"
    path.write_text(
        "Speaker,Start Time,Utterance Text,notes\n"
        'Interviewer,00:00:05,"Why, then?",x\n'
        "Interviewer,7.5,And?,\n"
        'Ann,1:02,"  Two\r\nlines  ",\n'
        "Ann,,,empty text: skipped\n"
        ",,No speaker.,\n",
        encoding="utf-8",
    )
    p = read_transcript(path)
    assert p.format == "csv"
    assert p.text == "Interviewer: Why, then?\nInterviewer: And?\nAnn: Two\nlines\nNo speaker."
    assert seen(p) == [
        ("Interviewer", "Why, then?"),
        ("Interviewer", "And?"),  # rows are not merged: one turn per utterance
        ("Ann", "Two\nlines"),
        ("", "No speaker."),
    ]
    assert [t.timestamp for t in p.turns] == [5.0, 7.5, 62.0, None]
    assert [(t.start, t.end) for t in p.turns] == [(13, 23), (37, 41), (47, 56), (57, 68)]
    check_offsets(p)


def test_semicolon_csv_with_bom_and_decimal_comma(tmp_path: Path) -> None:
    path = tmp_path / "sc.csv"
    path.write_bytes("\ufeffinterlocutor;timestamp;utterance_text\nclient;12,5;Ja, klar.\n".encode())
    p = read_transcript(path)
    assert (p.text, seen(p), p.turns[0].timestamp) == ("client: Ja, klar.", [("client", "Ja, klar.")], 12.5)


def test_utf16_tsv_and_persian(tmp_path: Path) -> None:
    path = tmp_path / "fa.tsv"
    path.write_bytes(b"\xff\xfe" + "who\ttext\nمصاحبه‌گر\tچرا؟\nP1\tچون, خب\n".encode("utf-16-le"))
    p = read_transcript(path)
    assert p.format == "tsv"
    assert p.text == "مصاحبه‌گر: چرا؟\nP1: چون, خب"
    assert seen(p) == [("مصاحبه‌گر", "چرا؟"), ("P1", "چون, خب")]


def test_text_column_only(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Text\nHello.\n\nBye.\n", encoding="utf-8")
    p = read_transcript(path)
    assert p.text == "Hello.\nBye." and seen(p) == [("", "Hello."), ("", "Bye.")]


def test_xlsx_first_sheet_numbers_and_times(tmp_path: Path) -> None:
    import datetime as dt

    path = write_xlsx(
        tmp_path / "int02.xlsx",
        [
            [None],
            ["Name", "Time", "Transcript"],
            ["Int", dt.time(0, 1, 2), "How many?"],
            ["P1", 3, 42],
            [None, None, None],
            ["P1", None, "  Done.  "],
        ],
    )
    p = read_transcript(path)
    assert p.format == "xlsx"
    assert p.text == "Int: How many?\nP1: 42\nP1: Done."
    assert seen(p) == [("Int", "How many?"), ("P1", "42"), ("P1", "Done.")]
    assert [t.timestamp for t in p.turns] == [62.0, 3.0, None]
    check_offsets(p)


# --- bad input -------------------------------------------------------------------------------


def test_no_text_column_names_file_headers_and_accepted_names(tmp_path: Path) -> None:
    path = tmp_path / "codings.csv"
    path.write_text("source,start,end,code,coder\nint01,0,5,cost,ann\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_transcript(path)
    assert str(err.value) == (
        f"{path}: no text column in the header row (found 'source', 'start', 'end', 'code', 'coder'); "
        "name the column of what was said one of: text, utterance, utterance_text, transcript, content, "
        "speech, words, says, dialogue"
    )
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"x\.csv: the file is empty"),
        (b",,\n,,\n", r"x\.csv: the table is empty \(no header row\)"),
        (b"speaker,text\n", r"x\.csv: the table has a text column \('text'\) but no row with text"),
        (b"speaker,text\nAnn,  \n", r"x\.csv: the table has a text column \('text'\) but no row"),
        (b"speaker,text\nAnn,caf\xe9\n", r"x\.csv: not UTF-8 or UTF-16 text \(byte 0xe9"),
        (b'text\n"open quote\x00\n', r"x\.csv: contains NUL bytes"),
    ],
)
def test_broken_csv(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_transcript(path)


def test_a_field_over_the_csv_field_limit_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('text\nok\n"' + "y" * 200_000 + '"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.csv row 3: not a readable table row"):
        read_transcript(path)


def test_xlsx_that_is_not_a_zip_or_not_a_workbook(tmp_path: Path) -> None:
    text = tmp_path / "fake.xlsx"
    text.write_text("speaker,text\nAnn,hi\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"fake\.xlsx: not a readable \.xlsx \(truncated or corrupt\?\)"):
        read_transcript(text)
    other = tmp_path / "other.xlsx"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match=r"other\.xlsx: not a readable \.xlsx"):
        read_transcript(other)
    good = write_xlsx(tmp_path / "good.xlsx", [["text"], ["hi"]])
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match=r"cut\.xlsx: not a readable \.xlsx"):
        read_transcript(cut)


def test_xlsx_with_headers_only(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "h.xlsx", [["Speaker", "Utterance"]])
    with pytest.raises(InputError, match=r"h\.xlsx: the table has a text column \('Utterance'\) but no row"):
        read_transcript(path)


def test_is_transcript_tells_codings_tables_from_transcripts(tmp_path: Path) -> None:
    (tmp_path / "codings.csv").write_text("source,start,end,code,coder\n", encoding="utf-8")
    (tmp_path / "meta.tsv").write_text("source\tparticipant\n", encoding="utf-8")
    (tmp_path / "t.csv").write_bytes(b"speaker;text\nAnn;caf\xe9\n")  # undecodable: read, and refused there
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")  # unreadable: read, and refused there
    write_xlsx(tmp_path / "meta.xlsx", [["source", "group"], ["int01", "a"]])
    write_xlsx(tmp_path / "t.xlsx", [["Who", "Says"], ["Ann", "hi"]])
    (tmp_path / "t.txt").write_text("hi", encoding="utf-8")
    (tmp_path / "t.pages").write_text("hi", encoding="utf-8")
    got = {f.name: is_transcript(f) for f in tmp_path.iterdir()}
    assert got == {
        "codings.csv": False,
        "meta.tsv": False,
        "t.csv": True,
        "broken.xlsx": True,
        "meta.xlsx": False,
        "t.xlsx": True,
        "t.txt": True,
        "t.pages": False,
    }


def test_folder_skips_tables_that_are_not_transcripts_with_a_note(tmp_path: Path) -> None:
    from pipeline.project.ingest import collect_files, skipped_note

    (tmp_path / "codings.csv").write_text("source,start,end,code,coder\n", encoding="utf-8")
    (tmp_path / "int01.csv").write_text("speaker,text\nAnn,hi\n", encoding="utf-8")
    (tmp_path / "int02.doc").write_bytes(b"\xd0\xcf")
    skipped: list[Path] = []
    assert collect_files([tmp_path], skipped) == [tmp_path / "int01.csv"]
    assert skipped_note(skipped) == (
        f"skipped 1 file qualflow cannot read (.doc): {tmp_path / 'int02.doc'}; save it as .txt or .docx; "
        f"skipped 1 table that is not a transcript (no text column): {tmp_path / 'codings.csv'}"
    )
    # named on its own, it is read, and refused
    assert collect_files([tmp_path / "codings.csv"]) == [tmp_path / "codings.csv"]


# --- properties --------------------------------------------------------------------------------

CELL = st.text(alphabet=st.sampled_from(list("ab ,;:\t\n\"'ی?")), max_size=12)


@given(st.lists(st.tuples(CELL, CELL), max_size=12))
@settings(max_examples=80, deadline=None)
def test_property_table_offsets(rows: list[tuple[str, str]]) -> None:
    table = [(1, ["speaker", "text"]), *((n, [s, w]) for n, (s, w) in enumerate(rows, start=2))]
    expected = [(" ".join(s.split()), w.strip()) for s, w in rows if w.strip()]
    if not expected:
        with pytest.raises(InputError, match="no row with text"):
            parse_table(table, "p.csv", "csv")
        return
    p = parse_table(table, "p.csv", "csv")
    assert seen(p) == expected
    assert p.text == "\n".join(f"{s}: {w}" if s else w for s, w in expected)
    check_offsets(p)


@given(st.lists(st.tuples(CELL, CELL), min_size=1, max_size=8), st.sampled_from([",", ";", "\t"]))
@settings(max_examples=60, deadline=None)
def test_property_csv_round_trip(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]], sep: str
) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
    writer.writerow(["Speaker", "Utterance"])
    writer.writerows(rows)
    path = tmp_path_factory.mktemp("csv") / "r.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    expected = [(" ".join(s.split()), w.strip()) for s, w in rows if w.strip()]
    if not expected:
        with pytest.raises(InputError):
            read_transcript(path)
        return
    p = read_transcript(path)
    assert seen(p) == expected
    check_offsets(p)


def test_billion_laughs_in_an_xlsx_sheet_is_one_line(tmp_path: Path) -> None:
    """openpyxl parses with the standard library's expat, which refuses entity amplification."""
    import io

    good = write_xlsx(tmp_path / "good.xlsx", [["text"], ["hi"]])
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    sheet = (
        f'<?xml version="1.0"?><!DOCTYPE w [{entities}]><worksheet '
        'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" '
        't="inlineStr"><is><t>text</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>&l9;</t></is>'
        "</c></row></sheetData></worksheet>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(
                info.filename, sheet if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            )
    path = tmp_path / "lol.xlsx"
    path.write_bytes(out.getvalue())
    with pytest.raises(InputError, match=r"lol\.xlsx: not a readable \.xlsx .*amplification"):
        read_transcript(path)


# --- a table that holds several interviews -------------------------------------------------------


def test_split_writes_one_csv_per_interview_in_order(tmp_path: Path) -> None:
    from pipeline.ingest.tables import grouping_column, read_table_rows, split_table

    path = tmp_path / "study.csv"
    path.write_text(
        'Transcript ID,speaker,text\n7,Int,Why?\n7,Ann,"Because, well."\n9 b,Int,How?\n7,Int,Ok.\n',
        encoding="utf-8",
    )
    assert grouping_column(read_table_rows(path)) == ("Transcript ID", 2)
    written = split_table(path, "transcript_id", tmp_path / "out")  # the header as ingest reads it
    assert [(p.name, n) for p, n in written] == [("study-7.csv", 3), ("study-9_b.csv", 1)]
    assert (tmp_path / "out" / "study-7.csv").read_text(encoding="utf-8") == (
        'Transcript ID,speaker,text\n7,Int,Why?\n7,Ann,"Because, well."\n7,Int,Ok.\n'
    )
    p = read_transcript(tmp_path / "out" / "study-7.csv")
    assert p.text == "Int: Why?\nAnn: Because, well.\nInt: Ok."


def test_split_xlsx_keeps_times_as_the_reader_reads_them(tmp_path: Path) -> None:
    import datetime as dt

    from pipeline.ingest.tables import split_table

    path = write_xlsx(
        tmp_path / "s.xlsx",
        [["session", "time", "text"], ["a", dt.time(0, 1, 23), "Hi."], ["b", 12.5, "Yes."]],
    )
    split_table(path, "session", tmp_path)
    assert [t.timestamp for t in read_transcript(tmp_path / "s-a.csv").turns] == [83.0]
    assert [t.timestamp for t in read_transcript(tmp_path / "s-b.csv").turns] == [12.5]


@pytest.mark.parametrize(
    ("content", "by", "message"),
    [
        (
            "id,text\n1,a\n",
            "session",
            r"s\.csv: no column 'session' in the header row \(found 'id', 'text'\)",
        ),
        ("session,text\n1,a\n,b\n", "session", r"s\.csv row 3: no value in column 'session'; fill it in"),
        ("session,text\na b,x\na/b,y\n", "session", r"values 'a b' and 'a/b' of column 'session' would both"),
        ("session,text\n", "session", r"s\.csv: the table has a header but no rows"),
        ("", "session", r"s\.csv: the file is empty"),
    ],
)
def test_split_refuses_bad_tables_and_writes_nothing(
    tmp_path: Path, content: str, by: str, message: str
) -> None:
    from pipeline.ingest.tables import split_table

    path = tmp_path / "s.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        split_table(path, by, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_split_never_overwrites(tmp_path: Path) -> None:
    from pipeline.ingest.tables import split_table

    path = tmp_path / "s.csv"
    path.write_text("session,text\na,x\nb,y\n", encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "s-b.csv").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match=r"out/s-b\.csv already exist; choose another --out folder"):
        split_table(path, "session", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s-b.csv"]
    assert (tmp_path / "out" / "s-b.csv").read_text(encoding="utf-8") == "mine"


def test_a_time_that_is_not_a_time_is_left_out_with_a_note(tmp_path: Path) -> None:
    # AnnoMI's transcript 38 has '00:09:025': one bad cell of metadata must not refuse 9,699 rows
    path = tmp_path / "x.csv"
    path.write_bytes(b"Time,text\n0:05,hi\nlater,there\nnan,and\n" + b"9" * 400 + b",so\n00:09:025,ok\n")
    p = read_transcript(path)
    assert [t.timestamp for t in p.turns] == [5.0, None, None, None, None]
    assert p.text == "hi\nthere\nand\nso\nok"
    assert p.notes == (
        f"{path}: 4 rows have a 'Time' that is not a time (row 3 'later', row 4 'nan', row 5 '"
        + "9" * 40
        + "' and 1 more), stored without one; write seconds (83.5) or a clock (00:01:23) and ingest the "
        "file again to keep it",
    )
    path.write_text("time,text\n1:2:3:4,hi\n", encoding="utf-8")
    assert (
        read_transcript(path)
        .notes[0]
        .startswith(f"{path}: 1 row has a 'time' that is not a time (row 2 '1:2:3:4')")
    )
    path.write_text("time,text\n0:05,hi\n", encoding="utf-8")
    assert read_transcript(path).notes == ()


def test_a_table_of_several_interviews_says_how_to_split_it(tmp_path: Path) -> None:
    """The note comes from the reader, so `ingest` and the process flow both pass it on."""
    path = tmp_path / "study.csv"
    path.write_text("session,speaker,text\na,Int,Why?\na,Ann,So.\nb,Int,How?\n", encoding="utf-8")
    assert read_transcript(path).notes == (
        f"study.csv became one source, but its column 'session' names 2 different values; if those are "
        f"separate interviews, make one file each with `qualflow split {path} --by session` and ingest that "
        "folder instead (each interview is then a source of its own)",
    )
    path.write_text("session,speaker,text\na,Int,Why?\na,Ann,So.\n", encoding="utf-8")
    assert read_transcript(path).notes == ()  # one interview: nothing to say


def test_unquoted_delimiters_in_the_last_text_column_stay_in_the_text(tmp_path: Path) -> None:
    """From a review: ``Int,Hello, how are you`` was stored as 'Hello'."""
    path = tmp_path / "x.csv"
    path.write_text("speaker,text\nInt,Hello, how are you\nAnn,Fine\n", encoding="utf-8")
    assert read_transcript(path).text == "Int: Hello, how are you\nAnn: Fine"
    path.write_text("text,speaker\nHello, how are you,Int\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.csv row 2: 3 cells but the header has 2 columns; put quotes"):
        read_transcript(path)


def test_whispers_tsv_counts_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv"
    path.write_text("start\tend\ttext\n0\t4200\tSo tell me.\n4200\t83500\tWell.\n", encoding="utf-8")
    assert [t.timestamp for t in read_transcript(path).turns] == [0.0, 4.2]


def test_an_xlsx_with_a_wrong_dimension_is_read_whole(tmp_path: Path) -> None:
    """From a review: openpyxl's read-only mode trusts <dimension>, which some exporters get wrong."""
    import shutil

    good = write_xlsx(tmp_path / "good.xlsx", [["speaker", "text"], ["Int", "Why?"]])
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:B2"/>', b'<dimension ref="A1"/>')
                assert b'<dimension ref="A1"/>' in data
            zout.writestr(item, data)
    shutil.copy(bad, tmp_path / "copy.xlsx")
    assert read_transcript(tmp_path / "copy.xlsx").text == "Int: Why?"


def test_split_skips_blank_rows_and_shortens_long_names(tmp_path: Path) -> None:
    from pipeline.ingest.tables import split_table

    path = tmp_path / "s.csv"
    long = "x" * 300
    path.write_text(f"session,text\na,hi\n,\n\n{long},there\n,,\n", encoding="utf-8")
    written = split_table(path, "session", tmp_path / "out")
    names = [p.name for p, _ in written]
    assert names[0] == "s-a.csv" and len(names[1]) < 100 and names[1].startswith("s-" + "x" * 60 + "-")
    assert read_transcript(written[1][0]).text == "there"


def test_split_each_row_makes_one_file_per_answer(tmp_path: Path) -> None:
    """Survey answers, one respondent a row and no id column (games-as-art's layout)."""
    from pipeline.ingest.tables import split_table

    path = tmp_path / "answers.csv"
    path.write_text("text\nI felt calm.\n\n" + "".join(f"answer {i}\n" for i in range(9)), encoding="utf-8")
    written = split_table(path, None, tmp_path / "out")
    assert [(p.name, n) for p, n in written][:2] == [("answers-02.csv", 1), ("answers-04.csv", 1)]
    assert len(written) == 10 and read_transcript(written[0][0]).text == "I felt calm."


def test_split_leaves_out_rows_without_words(tmp_path: Path) -> None:
    """A respondent who skipped the question: a file of no text would make ingest refuse the folder."""
    from pipeline.ingest.tables import split_table

    path = tmp_path / "a.csv"
    path.write_text("id,text,age\n1,Calm.,30\n2,,41\n3,Busy.,25\n", encoding="utf-8")
    assert [p.name for p, _ in split_table(path, None, tmp_path / "rows")] == ["a-2.csv", "a-4.csv"]
    assert [p.name for p, _ in split_table(path, "id", tmp_path / "ids")] == ["a-1.csv", "a-3.csv"]
    path.write_text("id,age\n1,30\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"a\.csv: no text column in the header row \(found 'id', 'age'\)"):
        split_table(path, "id", tmp_path / "none")
