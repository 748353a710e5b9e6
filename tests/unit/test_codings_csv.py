"""Codings CSV import and export (pipeline.codings_csv)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codings_csv import codings_to_csv, read_codings_csv, write_codings_csv
from pipeline.domain import Code, Codebook, Coding
from pipeline.errors import InputError

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
BOOK = Codebook([Code("trust-building", guid=GUID), Code("fear"), Code("hope", parent="fear")])
SOURCES = {"int01": "Ärztin: Ich vertraue dem Team.", "int03": "x" * 4312}


def _csv(tmp_path: Path, text: str, name: str = "codings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_valid_lines_exactly(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "source,start,end,code,coder,created_at,origin,memo\n"
        "int01,8,29,trust-building,ana,2024-05-01T14:30:00Z,,\n"
        f'int03,0,10,{GUID.upper()},bob,,model-accepted,"linear@3, score 0.8"\n'
        "\n"
        "int01,0,6,hope,ana,,imported,\n",
    )
    assert read_codings_csv(path, BOOK, SOURCES) == [
        Coding("int01", 8, 29, "trust-building", "ana", "human", "2024-05-01T14:30:00Z", None),
        Coding("int03", 0, 10, "trust-building", "bob", "model-accepted", None, "linear@3, score 0.8"),
        Coding("int01", 0, 6, "hope", "ana", "imported", None, None),
    ]
    assert SOURCES["int01"][8:29] == "Ich vertraue dem Team"


def test_byte_order_mark_and_only_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "codings.csv"
    path.write_bytes("\ufeffsource,start,end,code,coder\r\nint01,0,6,fear,ana\r\n".encode())
    assert read_codings_csv(path, BOOK, SOURCES) == [Coding("int01", 0, 6, "fear", "ana")]


def test_spreadsheet_headers_and_semicolon_or_tab_separators(tmp_path: Path) -> None:
    # what Excel writes: capitalised headers; "CSV" separated by semicolons in many locales, or tabs
    want = [Coding("int01", 0, 6, "fear", "ana"), Coding("int01", 8, 29, "trust-building", "bob")]
    for sep in (",", ";", "\t"):
        text = sep.join(["Source", "Start", "End", "Code", "CODER"]) + "\n"
        text += sep.join(["int01", "0", "6", "fear", "ana"]) + "\n"
        text += sep.join(["int01", "8", "29", "trust-building", "bob"]) + "\n"
        assert read_codings_csv(_csv(tmp_path, text), BOOK, SOURCES) == want, repr(sep)
    # a semicolon inside a comma-separated file's cells does not switch the separator
    path = _csv(tmp_path, 'source,start,end,code,coder,memo\nint01,0,6,fear,ana,"a; b"\n')
    assert read_codings_csv(path, BOOK, SOURCES)[0].memo == "a; b"


def test_every_bad_line_is_listed_in_one_message(tmp_path: Path) -> None:
    lines = ["source,start,end,code,coder"] + ["int01,0,6,fear,ana"] * 20
    lines.insert(14 - 1, "int01,0,5,trust,ana")  # line 14
    lines.insert(20 - 1, "int03,100,9000,fear,ana")  # line 20
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_codings_csv(path, BOOK, SOURCES)
    assert str(info.value).endswith(
        "codings.csv: 2 bad lines: line 14: code 'trust' is not in the codebook (did you mean "
        "'trust-building'?); line 20: end 9000 is past the end of source 'int03' (4312 characters)"
    )


def test_each_kind_of_bad_line(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "source,start,end,code,coder,origin,created_at\n"
        "int1,0,5,fear,ana,,\n"  # 2 unknown source
        "int01,a,5,fear,ana,,\n"  # 3 non-integer
        "int01,-1,5,fear,ana,,\n"  # 4 negative
        "int01,5,5,fear,ana,,\n"  # 5 start >= end
        "int01,0,5,fear, ,,\n"  # 6 empty coder
        "int01,0,5,fear,ana,robot,\n"  # 7 bad origin
        "int01,0,5,fear,ana,,yesterday\n"  # 8 bad time
        "int01,0,5\n"  # 9 short row
        "int01,0,5,fear,ana,,\n",  # 10 fine
    )
    with pytest.raises(InputError) as info:
        read_codings_csv(path, BOOK, SOURCES)
    message = str(info.value)
    assert message.startswith(
        f"{path}: 8 bad lines: line 2: source 'int1' is not stored (did you mean 'int01'?)"
    )
    for part in [
        "line 3: start 'a' is not a whole number",
        "line 4: start -1 is negative",
        "line 5: start 5 is not before end 5",
        "line 6: the coder is empty",
        "line 7: origin 'robot' is unknown; use one of ['human', 'model-accepted', 'imported', 'consensus']",
        "line 8: created_at 'yesterday' is not an ISO 8601 date-time",
        "line 9: 3 cells but the header has 7 columns",
    ]:
        assert part in message
    assert "line 10" not in message
    assert "\n" not in message


def test_missing_and_unknown_columns(tmp_path: Path) -> None:
    with pytest.raises(
        InputError,
        match=r"codings\.csv: missing columns 'end', 'coder'; the header needs "
        r"source,start,end,code,coder",
    ):
        read_codings_csv(_csv(tmp_path, "source,start,code\n"), BOOK, SOURCES)
    with pytest.raises(InputError, match=r"codings\.csv: missing column 'coder';"):
        read_codings_csv(_csv(tmp_path, "source,start,end,code\n"), BOOK, SOURCES)
    with pytest.raises(InputError, match=r"codings\.csv: unknown column 'score'; valid columns"):
        read_codings_csv(_csv(tmp_path, "source,start,end,code,coder,score\n"), BOOK, SOURCES)
    with pytest.raises(InputError, match=r"codings\.csv: the file is empty"):
        read_codings_csv(_csv(tmp_path, ""), BOOK, SOURCES)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "codings.csv"
    path.write_bytes(b"source,start,end,code,coder\nint01,0,5,f\xe9ar,ana\n")
    with pytest.raises(InputError, match=r"codings\.csv line 2: not UTF-8"):
        read_codings_csv(path, BOOK, SOURCES)


def test_write_then_read_and_exact_text(tmp_path: Path) -> None:
    codings = [
        Coding("int01", 8, 29, "trust-building", "ana", "human", "2024-05-01T14:30:00Z"),
        Coding("int01", 0, 6, "hope", "model", "model-accepted", None, 'score 0.8, "ok"\nsecond line'),
    ]
    write_codings_csv(codings, tmp_path / "out.csv")
    assert codings_to_csv(codings[:1]) == (
        "source,start,end,code,coder,created_at,origin,memo\n"
        "int01,8,29,trust-building,ana,2024-05-01T14:30:00Z,human,\n"
    )
    assert read_codings_csv(tmp_path / "out.csv", BOOK, SOURCES) == codings
    assert os.listdir(tmp_path) == ["out.csv"]


_TEXT = "Ärztin: Ich vertraue dem Team. 😀 Ende"


@st.composite
def codings(draw: st.DrawFn) -> list[Coding]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, len(_TEXT) - 1))
        end = draw(st.integers(start + 1, len(_TEXT)))
        out.append(
            Coding(
                "int01",
                start,
                end,
                draw(st.sampled_from(BOOK.names())),
                draw(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1)),
                draw(st.sampled_from(["human", "model-accepted", "imported"])),
                draw(st.one_of(st.none(), st.just("2024-05-01T14:30:00+02:00"))),
                draw(
                    st.one_of(
                        st.none(),
                        st.text(
                            st.characters(blacklist_categories=("Cs", "Co"), blacklist_characters="\r"),
                            min_size=1,
                        ),
                    )
                ),
            )
        )
    return out


def test_a_consensus_coding_reads_back_as_exported(tmp_path: Path) -> None:
    """`codings export` writes a lead's adjudication as coder and origin `consensus`; `codings import`
    reads that back (it used to refuse the origin, so a project with adjudications did not round-trip),
    and refuses the origin on another coder."""
    mine = Coding(
        "int01", 8, 29, "trust-building", "consensus", "consensus", None, "adjudication 2 by lea (ann)"
    )
    write_codings_csv([mine], tmp_path / "c.csv")
    assert read_codings_csv(tmp_path / "c.csv", BOOK, SOURCES) == [mine]
    path = _csv(tmp_path, "source,start,end,code,coder,origin\nint01,8,29,fear,ana,consensus\n")
    with pytest.raises(InputError, match="line 2: origin 'consensus' with coder 'ana'"):
        read_codings_csv(path, BOOK, SOURCES)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=codings())
def test_random_codings_round_trip(tmp_path: Path, items: list[Coding]) -> None:
    write_codings_csv(items, tmp_path / "c.csv")
    assert read_codings_csv(tmp_path / "c.csv", BOOK, {"int01": _TEXT}) == items
