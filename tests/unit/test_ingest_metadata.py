"""Participant metadata CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest.metadata import read_metadata_csv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def write(tmp_path: Path, content: str, name: str = "meta.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_fixture() -> None:
    assert read_metadata_csv(FIXTURES / "metadata.csv") == {
        "int01.txt": {
            "participant": "Mina",
            "group": "HQ",
            "date": "2024-03-05",
            "order": "1",
            "site": "Tehran",
        },
        "int02.txt": {"participant": "Kaveh", "group": "HQ", "date": "2024-03-06", "order": "2"},
        "int03.txt": {"participant": "Leila", "group": "province", "site": "Shiraz, Fars"},
    }


def test_only_source_required_bom_crlf_and_case(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbfSource,Group\r\na.txt,x\r\n\r\nb.txt,\r\n")
    assert read_metadata_csv(path) == {"a.txt": {"group": "x"}, "b.txt": {}}


def test_multiline_quoted_value(tmp_path: Path) -> None:
    path = write(tmp_path, 'source,note\na.txt,"two\nlines"\nb.txt,ok\n')
    assert read_metadata_csv(path) == {"a.txt": {"note": "two\nlines"}, "b.txt": {"note": "ok"}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,group\na,b\n", r"meta\.csv line 1: the header must have a 'source' column"),
        ("source,,group\na,b,c\n", r"meta\.csv line 1: column 2 of the header has no name"),
        ("source,group,Group\na,b,c\n", r"meta\.csv line 1: repeated column name\(s\) \['group'\]"),
        (
            "source,group\na.txt,x\nb.txt,y\na.txt,z\n",
            r"meta\.csv line 4: source 'a\.txt' already listed on line 2",
        ),
        ("source,order\na.txt,1\nb.txt,second\n", r"meta\.csv line 3: order 'second' is not an integer"),
        ("source,date\na.txt,2024-13-01\n", r"meta\.csv line 2: date '2024-13-01' is not an ISO date"),
        ("source,date\na.txt,05/03/2024\n", r"meta\.csv line 2: date '05/03/2024' is not an ISO date"),
        ("source,group\n,x\n", r"meta\.csv line 2: empty 'source'"),
        ("source,group\na.txt,x,y\n", r"meta\.csv line 2: 3 fields but the header has 2 columns"),
        ("   \n", r"meta\.csv: the file is empty"),
    ],
)
def test_bad_csv(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_metadata_csv(write(tmp_path, content))


def test_latin1_csv(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_bytes(b"source,participant\na.txt,Jos\xe9\n")
    with pytest.raises(InputError, match=r"meta\.csv: not UTF-8 or UTF-16 text"):
        read_metadata_csv(path)
