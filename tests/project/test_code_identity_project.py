"""Code identity in a project (issue 16): a codebook with shared names, codings by path, agreement
by path, the codings export, and the REFI-QDA round trip keeping guids and names."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.project.agreement import project_agreement
from pipeline.project.codebooks import export_codebook, import_codebook
from pipeline.project.codings import export_codings, import_codings
from pipeline.project.core import init_project
from pipeline.project.exchange import export_project_qdpx, import_project_qdpx
from pipeline.project.ingest import ingest
from pipeline.refi.qdc import NS_PROJECT

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "identity"
TEXT = "Too busy. No time in the evening. My sister helps.\n"


def test_shared_names_through_a_project(tmp_path: Path) -> None:
    (tmp_path / "int01.txt").write_text(TEXT * 2, encoding="utf-8")
    proj = init_project(tmp_path / "p", name="identity")
    ingest(proj, [tmp_path / "int01.txt"])
    import_codebook(proj, FIX / "maxqda_other.qdc")
    assert import_codings(proj, FIX / "codings_by_path.csv")
    export_codings(proj, tmp_path / "out.csv")
    lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert any(",Barriers/Other,ana," in line for line in lines)
    report = project_agreement(proj, coders=["ana", "bob"], codes=["outcomes/other", "Barriers/Other"])
    assert list(report.codes) == ["Outcomes/Other", "Barriers/Other"]
    with pytest.raises(InputError, match=r"code 'Other' is ambiguous: it names 3 codes \(Barriers/Other, "):
        project_agreement(proj, coders=["ana", "bob"], codes=["Other"])
    export_codebook(proj, tmp_path / "book.csv")
    assert "Other,Outcomes," in (tmp_path / "book.csv").read_text(encoding="utf-8")

    export_project_qdpx(proj, tmp_path / "a.qdpx")
    with zipfile.ZipFile(tmp_path / "a.qdpx") as zf:
        root = ET.fromstring(zf.read("project.qde"))
    codes = [(c.get("name"), c.get("guid")) for c in root.iter(f"{{{NS_PROJECT}}}Code")]
    assert ("Other", "{07DAC8E6-B1D3-4E9A-9C77-6D8E9FA0B1C6}") in codes and len(codes) == 7
    other = init_project(tmp_path / "q", name="identity")
    import_project_qdpx(other, tmp_path / "a.qdpx")
    export_project_qdpx(other, tmp_path / "b.qdpx")
    with zipfile.ZipFile(tmp_path / "a.qdpx") as za, zipfile.ZipFile(tmp_path / "b.qdpx") as zb:
        assert za.read("project.qde") == zb.read("project.qde")
    from pipeline.project.decisions import DuplicateCodingError, add_coding
    from pipeline.store.queries import get_or_create_coder

    with proj.store.transaction() as s:  # the review app's code box: a path, a guid, not a shared name
        ana = get_or_create_coder(
            s, "ana"
        )  # (0..8 holds ana's imported codings; an identical one is refused)
        assert (
            add_coding(s, ana, source="int01", start=0, end=9, code="barriers/other").code == "Barriers/Other"
        )
        guid = "e5b8a6c4-9fb1-4c7e-9a55-4b6c7d8e9fa4"
        assert add_coding(s, ana, source="int01", start=0, end=9, code=guid).code == "Facilitators/Other"
        with pytest.raises(
            DuplicateCodingError, match=r"^you already have coding \d+ of int01 0..8 'Barriers/Other'"
        ):
            add_coding(s, ana, source="int01", start=0, end=8, code="barriers/other")
        with pytest.raises(InputError, match=r"^code 'Other' is ambiguous: it names 3 codes"):
            add_coding(s, ana, source="int01", start=0, end=9, code="Other")
    proj.close()
    other.close()


def test_rich_refi_project_through_a_project(tmp_path: Path) -> None:
    """Memos, cases/variables, sets and a .docx-only source survive import -> project -> export."""
    from pipeline.refi.qdpx import import_qdpx
    from tests.unit.test_refi_rich import ATLAS, NVIVO, NVIVO_FILES, _docx, _write

    atlas_files = {
        "sources/{B1000000-0000-4000-8000-000000000001}.docx": _docx(["Q: Why late?", "A: no bus today."])
    }
    for name, qde, files in (("nvivo", NVIVO, NVIVO_FILES), ("atlas", ATLAS, atlas_files)):
        src = _write(tmp_path / f"{name}.qdpx", qde, files)
        proj = init_project(tmp_path / f"p-{name}", name=name)
        report = import_project_qdpx(proj, src)
        assert report.skipped_selections == (1 if name == "nvivo" else 3)  # PDF; audio + picture
        export_project_qdpx(proj, tmp_path / f"{name}-out.qdpx")
        first, second = import_qdpx(src), import_qdpx(tmp_path / f"{name}-out.qdpx")
        assert [(s.name, s.text, s.metadata) for s in second.sources] == [
            (s.name, s.text, s.metadata) for s in first.sources
        ]
        assert second.codebook.codes == first.codebook.codes
        assert [(c.source, c.start, c.end, c.code, c.coder) for c in second.codings] == [
            (c.source, c.start, c.end, c.code, c.coder) for c in first.codings
        ]
        proj.close()
