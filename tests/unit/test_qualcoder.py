"""QualCoder's project file (issue 16): a hand-built data.qda (tests/fixtures/qualcoder)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.qualcoder import read_qualcoder
from tests.fixtures.qualcoder.make_qualcoder_project import TEXT1, TEXT2, build


@pytest.fixture
def qda(tmp_path: Path) -> Path:
    folder = tmp_path / "Carers.qda"
    folder.mkdir()
    return build(folder / "data.qda")


def test_categories_codes_coders_and_codings_at_the_same_offsets(qda: Path) -> None:
    before = qda.read_bytes(), os.stat(qda).st_mtime_ns
    p = read_qualcoder(qda.parent)  # the project folder; data.qda inside is found
    assert (qda.read_bytes(), os.stat(qda).st_mtime_ns) == before  # read-only
    assert p.origin == "QualCoder (database v7)"
    cb = p.codebook
    assert cb.names() == [
        "Barriers",
        "Physical",
        "back pain",
        "Barriers/Barriers",
        "cost",
        "Support",
        "Family",
        "Time",
    ]
    assert [(c.title, c.parent, c.is_codable) for c in cb.codes] == [
        ("Barriers", None, False),
        ("Physical", "Barriers", False),
        ("back pain", "Physical", True),
        ("Barriers", "Barriers", True),
        ("cost", "Barriers", True),
        ("Support", None, False),
        ("Family", "Support", True),
        ("Time", None, True),
    ]
    assert cb.get("Barriers").description == "What stands in the way."  # type: ignore[union-attr]
    assert cb.get("Family").color == "#77EB77"  # type: ignore[union-attr]
    assert p.users == ["sara", "reza"]
    texts = {s.name: s.text for s in p.sources}
    assert texts == {"int01": TEXT1.replace("\r\n", "\n"), "int02": TEXT2}
    got = [
        (c.source, c.code, texts[c.source][c.start : c.end], c.coder, c.memo, c.created_at) for c in p.codings
    ]
    assert got == [
        (
            "int01",
            "Barriers/Barriers",
            "The cost of the bus. And my back.",
            "sara",
            "Both barriers at once.",
            "2024-03-01 10:15:00",
        ),
        ("int01", "cost", "The cost of the bus.", "sara", None, "2024-03-01 10:15:00"),
        ("int01", "back pain", "And my back.", "reza", None, "2024-03-01 10:15:00"),
        ("int01", "Family", "My sister helps.", "reza", None, "2024-03-01 10:15:00"),
        ("int02", "Time", "No time, really.", "sara", None, "2024-03-01 10:15:00"),
    ]
    by_name = {s.name: s for s in p.sources}
    assert by_name["int01"].metadata == {
        "memo": "First interview, at home.",
        "participant": "P01",
        "Age": "54",
        "order": "1",
    }
    assert by_name["int02"].metadata == {"order": "2"}
    assert p.skipped == ["media source 'map.png'"] and p.skipped_selections == 1


def test_missing_columns_and_tables_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "old.qda"
    con = sqlite3.connect(bad)
    con.executescript(
        "CREATE TABLE source (id integer, name text, fulltext text);"
        "CREATE TABLE code_cat (catid integer, name text, supercatid integer);"
        "CREATE TABLE code_name (cid integer, name text, catid integer);"
        "CREATE TABLE code_text (cid integer, fid integer, selfirst integer, sellast integer);"
    )
    con.close()
    with pytest.raises(
        InputError, match=r"old\.qda: table 'code_text' has no column 'pos0', 'pos1'; this QualCoder"
    ):
        read_qualcoder(bad)
    con = sqlite3.connect(bad)
    con.execute("DROP TABLE code_name")
    con.close()
    with pytest.raises(InputError, match=r"not a QualCoder project: the database has no table 'code_name'"):
        read_qualcoder(bad)
    (tmp_path / "text.qda").write_text("hello, not sqlite")
    with pytest.raises(InputError, match=r"text\.qda: not a QualCoder project database"):
        read_qualcoder(tmp_path / "text.qda")
    (tmp_path / "empty.qda").mkdir()
    with pytest.raises(InputError, match=r"no data\.qda inside"):
        read_qualcoder(tmp_path / "empty.qda")
