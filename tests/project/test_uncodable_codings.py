"""Codings of a code the codebook marks not codable (a category: `codable: false`, REFI-QDA
`isCodable="false"`, a QualCoder category) are not taken silently (audit): a codings CSV line is refused
(one line naming file, line and code, exit 2, nothing written), the review app's hand coding is refused,
and a REFI-QDA / QualCoder project import keeps the tool's codings with one warning line per code."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.errors import InputError
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.decisions import add_coding
from pipeline.project.exchange import export_project_qdpx, import_project_qdpx
from pipeline.project.ingest import ingest
from pipeline.store.queries import get_or_create_coder
from pipeline.store.schema import CodingRow

T1 = "Interviewer: How is the budget?\nParticipant: The budget is too small. We cannot hire staff.\n"
CB = "name: t\ncodes:\n  - name: Barriers\n    codable: {codable}\n    codes:\n      - name: cost\n      - name: staff\n"
AT = T1.index("The budget")
CSV = f"source,start,end,code,coder\ni1,{AT},{AT + 10},cost,sara\ni1,{AT},{AT + 10},barriers,sara\n"
REFUSED = (
    "1 bad line: line 3: code 'barriers' is a category, not codable in the codebook (codable: false); "
    "code the passage with one of its codes (cost, staff), or make 'Barriers' codable in the codebook "
    "and import the codebook again"
)


def _project(tmp_path: Path, name: str = "p", *, codable: bool = False) -> Project:
    (tmp_path / "i1.txt").write_text(T1, encoding="utf-8")
    proj = init_project(tmp_path / name, name=name)
    ingest(proj, [tmp_path / "i1.txt"])
    (tmp_path / f"cb-{codable}.yaml").write_text(CB.format(codable=str(codable).lower()), encoding="utf-8")
    import_codebook(proj, tmp_path / f"cb-{codable}.yaml")
    return proj


def _n_codings(proj: Project) -> int:
    with proj.store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(CodingRow)) or 0)


def test_a_codings_csv_line_on_a_category_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    csv = tmp_path / "codings.csv"
    csv.write_text(CSV, encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_codings(proj, csv)
    assert str(err.value) == f"{csv}: {REFUSED}"
    assert _n_codings(proj) == 0  # not even line 2
    proj.close()


def test_codings_import_on_a_category_through_the_cli(tmp_path: Path) -> None:
    _project(tmp_path).close()
    (tmp_path / "codings.csv").write_text(CSV, encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", "p", "codings", "import", "codings.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].endswith(REFUSED) and "codings.csv" in lines[0]
    assert _n_codings(Project.open(tmp_path / "p")) == 0


def test_the_same_line_is_taken_where_the_codebook_makes_the_category_codable(tmp_path: Path) -> None:
    proj = _project(tmp_path, codable=True)
    csv = tmp_path / "codings.csv"
    csv.write_text(CSV, encoding="utf-8")
    assert import_codings(proj, csv) == {"sara": 2}
    proj.close()


def test_hand_coding_a_category_is_refused(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    with proj.store.transaction() as s:
        ana = get_or_create_coder(s, "ana")
        with pytest.raises(InputError) as err:
            add_coding(s, ana, source="i1", start=AT, end=AT + 10, code="Barriers")
        assert str(err.value) == REFUSED.split(": ", 2)[2].replace("'barriers'", "'Barriers'")
        assert add_coding(s, ana, source="i1", start=AT, end=AT + 10, code="cost").code == "cost"
    proj.close()


WARNING = (
    "1 coding of 'Barriers', which the codebook marks not codable (a category; REFI-QDA "
    'isCodable="false"), imported as they are: agreement, rounds and training count only codable codes; '
    "to count them, make the code codable (`codable: true`) and `qualflow codebook import` the codebook again"
)


def test_a_refi_project_coding_a_non_codable_code_is_imported_with_a_warning(tmp_path: Path) -> None:
    src = _project(tmp_path, "src", codable=True)  # a tool where Barriers may be coded
    csv = tmp_path / "codings.csv"
    csv.write_text(CSV, encoding="utf-8")
    import_codings(src, csv)
    export_project_qdpx(src, tmp_path / "codable.qdpx")
    src.close()
    # the same project file, but the tool declares Barriers isCodable="false"
    with zipfile.ZipFile(tmp_path / "codable.qdpx") as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    qde = members["project.qde"].decode("utf-8")
    edited = re.sub(r'(<Code\b[^>]*name="Barriers"[^>]*isCodable=")true"', r'\1false"', qde)
    assert edited != qde
    members["project.qde"] = edited.encode("utf-8")
    with zipfile.ZipFile(tmp_path / "category.qdpx", "w") as zout:
        for n, data in members.items():
            zout.writestr(n, data)

    fresh = init_project(tmp_path / "fresh", name="fresh")
    report = import_project_qdpx(fresh, tmp_path / "category.qdpx")
    assert report.codings == {"sara": 2} and report.warnings == [WARNING]
    # the same file again adds nothing, so it has nothing to say about codings of the category
    report = import_project_qdpx(fresh, tmp_path / "category.qdpx")
    assert report.codings == {} and report.warnings == []
    fresh.close()
    # a codable code in the file, a category in the project's codebook (the project's definition wins)
    cat = _project(tmp_path, "cat")
    report = import_project_qdpx(cat, tmp_path / "codable.qdpx")
    assert report.codings == {"sara": 2} and report.warnings == [WARNING]
    cat.close()
    # nothing to say when the code is codable
    ok = init_project(tmp_path / "ok", name="ok")
    assert import_project_qdpx(ok, tmp_path / "codable.qdpx").warnings == []
    ok.close()
