"""Project-level services on the demo data: REFI-QDA round trip, agreement panel, report."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.errors import InputError
from pipeline.project.agreement import project_agreement
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.exchange import export_project_qdpx, import_project_qdpx
from pipeline.project.ingest import ingest
from pipeline.store.schema import CodingRow, SourceRow

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    proj = init_project(tmp_path_factory.mktemp("demo") / "p", name="demo")
    tr = DEMO / "transcripts"
    ingest(proj, [tr / "int01.txt", tr / "int02.txt", tr / "int03.txt", tr / "int04.md"])
    import_codebook(proj, DEMO / "codebook.yaml")
    import_codings(proj, DEMO / "codings.csv")
    return proj


def test_qdpx_project_round_trip_is_identical(demo_project: Project, tmp_path: Path) -> None:
    first = tmp_path / "a.qdpx"
    assert export_project_qdpx(demo_project, first) == (4, 29, 122)
    other = init_project(tmp_path / "other", name="demo")
    r = import_project_qdpx(other, first)
    assert sorted(r.sources) == ["int01", "int02", "int03", "int04"] and sum(r.codings.values()) == 122
    second = tmp_path / "b.qdpx"
    export_project_qdpx(other, second)
    with zipfile.ZipFile(first) as za, zipfile.ZipFile(second) as zb:
        assert za.read("project.qde") == zb.read("project.qde")
        assert sorted(za.namelist()) == sorted(zb.namelist())
        for name in za.namelist():
            assert za.read(name) == zb.read(name), name


def test_bad_qdpx_imports_nothing(tmp_path: Path) -> None:
    proj = init_project(tmp_path / "p")
    bad = tmp_path / "broken.qdpx"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(InputError, match="broken.qdpx"):
        import_project_qdpx(proj, bad)
    notrefi = tmp_path / "notrefi.qdpx"
    with zipfile.ZipFile(notrefi, "w") as z:
        z.writestr("project.qde", "<html><body>hello</body></html>")
    with pytest.raises(InputError, match="notrefi.qdpx"):
        import_project_qdpx(proj, notrefi)
    with proj.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(SourceRow)) == 0
        assert s.scalar(select(func.count()).select_from(CodingRow)) == 0


def test_demo_agreement_panel(demo_project: Project) -> None:
    report = project_agreement(demo_project, n_boot=200)
    assert list(report.coders) == ["reza", "sara"]
    # the two coders share int01-int03: their participant segments are the units
    pooled = report.pooled
    n = pooled.n_units
    assert 100 < n < 200
    kappa = pooled.estimates["cohen"].value
    assert 0.4 < kappa < 0.8
    with pytest.raises(InputError, match="unknown coder"):
        project_agreement(demo_project, coders=["sara", "nobody"])


def test_report_is_self_contained(demo_project: Project, tmp_path: Path) -> None:
    from pipeline.project.report import write_project_report

    path = write_project_report(demo_project, tmp_path / "report")
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    for heading in ("Corpus", "Codebook", "Saturation", "Inter-coder agreement", "Paradigm model"):
        assert heading in html
    assert (tmp_path / "report" / "agreement.csv").is_file()


def test_importing_the_same_qdpx_twice_adds_nothing(demo_project: Project, tmp_path: Path) -> None:
    path = tmp_path / "a.qdpx"
    export_project_qdpx(demo_project, path)
    other = init_project(tmp_path / "other", name="demo")
    import_project_qdpx(other, path)
    import_project_qdpx(other, path)
    with other.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(CodingRow)) == 122
        assert s.scalar(select(func.count()).select_from(SourceRow)) == 4  # same text: no new versions
