"""Codings from a column of utterance tables (`qualflow codings import-table`): each row's code on the
turn it was ingested as; every problem named before anything is stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.project.codebooks import import_codebook
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest
from pipeline.project.table_codings import import_table_codings
from pipeline.store.queries import current_sources, load_codings

TABLE = (
    "session,speaker,text,behaviour,annotator\n"
    "1,Therapist,Why now?,question,ann\n"
    "1,Client,,change,ann\n"  # no text: no turn, so no coding (and no row of the ingested text)
    "1,Client,I want to stop.,change;goal,bea\n"
    "1,Therapist,Mm.,n/a,ann\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = init_project(tmp_path / "p")
    (tmp_path / "s1.csv").write_text(TABLE, encoding="utf-8")
    ingest(proj, [tmp_path / "s1.csv"])
    (tmp_path / "cb.yaml").write_text(
        "name: t\ncodes:\n  - name: question\n  - name: change\n  - name: goal\n  - name: talk\n"
        "    codable: false\n",
        encoding="utf-8",
    )
    import_codebook(proj, tmp_path / "cb.yaml")
    return proj


def stored(proj: Project) -> list[tuple[str, str, str, str]]:
    with proj.store.transaction() as s:
        rows = {r.name: r.text for r in current_sources(s)}
        return sorted((c.source, rows[c.source][c.start : c.end], c.code, c.coder) for c in load_codings(s))


def test_each_rows_code_lands_on_its_turn(project: Project, tmp_path: Path) -> None:
    assert import_table_codings(project, [tmp_path], code_column="Behaviour", coder="lee") == ({"lee": 3}, 0)
    assert stored(project) == [
        ("s1", "I want to stop.", "change", "lee"),
        ("s1", "I want to stop.", "goal", "lee"),
        ("s1", "Why now?", "question", "lee"),
    ]
    # again: nothing new; by the annotator column: the same codings by other coders
    assert import_table_codings(project, [tmp_path / "s1.csv"], code_column="behaviour", coder="lee") == (
        {},
        3,
    )
    added, _ = import_table_codings(
        project, [tmp_path / "s1.csv"], code_column="behaviour", coder_column="annotator"
    )
    assert added == {"ann": 1, "bea": 2}


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        (
            TABLE.replace("goal,bea", "goals,bea").replace("question,ann", "talk,ann"),
            {"code_column": "behaviour", "coder": "lee"},
            r"^nothing imported: .*s1\.csv: row 2: code 'talk' is a category, not codable.*; row 4: code 'goals' is not in "
            r"the codebook \(did you mean 'goal'\?\)$",
        ),
        (
            TABLE,
            {"code_column": "code", "coder": "lee"},
            r"s1\.csv: no column 'code' in the header row \(found 'session', ",
        ),
        (
            TABLE,
            {"code_column": "behaviour"},
            r"^say who coded the tables: --coder NAME, or --coder-column COLUMN$",
        ),
        (
            TABLE.replace(",bea", ","),
            {"code_column": "behaviour", "coder_column": "annotator"},
            r"s1\.csv: row 4: no coder in column 'annotator'",
        ),
    ],
)
def test_problems_are_named_and_nothing_is_stored(
    project: Project, tmp_path: Path, table: str, kwargs: dict[str, str], message: str
) -> None:
    if table != TABLE:  # the same text, other codes: still the table that was ingested
        (tmp_path / "s1.csv").write_text(table, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        import_table_codings(project, [tmp_path / "s1.csv"], **kwargs)  # type: ignore[arg-type]
    assert stored(project) == []


def test_a_table_not_ingested_or_changed_since_is_refused(project: Project, tmp_path: Path) -> None:
    (tmp_path / "s2.csv").write_text(TABLE, encoding="utf-8")
    with pytest.raises(
        InputError, match=r"s2\.csv: source 's2' is not stored; `qualflow ingest .*s2\.csv` first"
    ):
        import_table_codings(project, [tmp_path / "s2.csv"], code_column="behaviour", coder="lee")
    (tmp_path / "s1.csv").write_text(TABLE.replace("Why now?", "Why?"), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"s1\.csv: source 's1' was ingested from another version of this table"
    ):
        import_table_codings(project, [tmp_path / "s1.csv"], code_column="behaviour", coder="lee")
    assert stored(project) == []


def test_the_cli_imports_and_says_how_many(project: Project, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", str(tmp_path / "p"), "codings", "import-table", str(tmp_path),
         "--code-column", "behaviour", "--coder-column", "annotator"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    first, note = r.stdout.strip().split("\n")
    assert first == "3 codings imported; ann: 1; bea: 2"
    assert note.startswith("note: 1 coding sits on interviewer turns (question (1))")  # the therapist's
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", str(tmp_path / "p"), "codings", "import-table", str(tmp_path),
         "--code-column", "nope", "--coder", "x"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "no column 'nope'" in r.stderr
