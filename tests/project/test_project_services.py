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


def _small_project(root: Path) -> Project:
    proj = init_project(root, name="small")
    ingest(proj, [DEMO / "transcripts" / "int01.txt"])
    import_codebook(proj, DEMO / "codebook.yaml")
    return proj


def _codings(proj: Project) -> list[tuple[str, int, int, str, str, str, str | None]]:
    from pipeline.store.schema import CoderRow

    with proj.store.transaction() as s:
        q = (
            select(SourceRow.name, CodingRow.start, CodingRow.end, CodingRow.code, CoderRow.name)
            .add_columns(CodingRow.origin, CodingRow.memo)
            .join(SourceRow, CodingRow.source_id == SourceRow.id)
            .join(CoderRow, CodingRow.coder_id == CoderRow.id)
            .where(CodingRow.active)
        )
        return sorted(tuple(r) for r in s.execute(q))  # type: ignore[misc]


def test_qdpx_import_of_identical_codings_keeps_every_memo(tmp_path: Path) -> None:
    """Two selections that are one coding (same source, span, code and coder) make one coding whose
    memo joins their distinct non-empty memos (in the order the export sorts them); none is lost."""
    proj = _small_project(tmp_path / "p")
    with proj.store.transaction() as s:
        from sqlalchemy import text

        from pipeline.store.queries import get_or_create_coder

        # a qualflow project holds one active coding per span, code and coder (migration 0008); without
        # that index it stands in for another tool, whose project file may hold several
        s.execute(text("DROP INDEX uq_codings_active"))
        src = s.scalar(select(SourceRow).where(SourceRow.name == "int01"))
        ana = get_or_create_coder(s, "ana")
        for memo in (None, "یادداشت", "", "یادداشت", "second thought"):
            s.add(
                CodingRow(
                    source_id=src.id,  # type: ignore[union-attr]
                    start=0,
                    end=11,
                    code="tools",
                    codebook_version_id=1,
                    coder_id=ana.id,
                    origin="human",
                    memo=memo,
                    active=True,
                )
            )
    export_project_qdpx(proj, tmp_path / "a.qdpx")
    other = init_project(tmp_path / "other", name="small")
    r = import_project_qdpx(other, tmp_path / "a.qdpx")
    assert r.codings == {"ana": 1}
    assert _codings(other) == [("int01", 0, 11, "tools", "ana", "human", "second thought\n\nیادداشت")]
    import_project_qdpx(other, tmp_path / "a.qdpx")  # again: nothing new, no memo doubled
    assert _codings(other) == [("int01", 0, 11, "tools", "ana", "human", "second thought\n\nیادداشت")]
    proj.close()
    other.close()


def test_qdpx_round_trip_keeps_model_accepted_codings_as_they_are(tmp_path: Path) -> None:
    """The provenance a .qdpx carries for a model-accepted coding comes back as its origin, never as a
    memo; a user's own memo comes back unchanged."""
    from pipeline.project.decisions import decide, set_memo
    from pipeline.store.queries import get_or_create_coder
    from review.testing import add_fake_suggestions

    proj = _small_project(tmp_path / "p")
    sids = add_fake_suggestions(proj.root, 2)
    with proj.store.transaction() as s:
        ana = get_or_create_coder(s, "ana")
        first = decide(s, sids[0], ana, "accept")
        decide(s, sids[1], ana, "accept")
        assert first.coding_id is not None
        set_memo(s, first.coding_id, ana, "a memo of mine\nover two lines")
    before = _codings(proj)
    assert [(c[5], c[6]) for c in before] == [
        ("model-accepted", "a memo of mine\nover two lines"),
        ("model-accepted", None),
    ] or [(c[5], c[6]) for c in before] == [
        ("model-accepted", None),
        ("model-accepted", "a memo of mine\nover two lines"),
    ]
    export_project_qdpx(proj, tmp_path / "a.qdpx")
    with zipfile.ZipFile(tmp_path / "a.qdpx") as zf:
        qde = zf.read("project.qde").decode("utf-8")
    assert qde.count("[qualflow] provenance: suggested by model test-model@1 (score ") == 2
    other = init_project(tmp_path / "other", name="small")
    import_project_qdpx(other, tmp_path / "a.qdpx")
    assert _codings(other) == before
    proj.close()
    other.close()


def test_qdpx_import_drops_the_unmarked_provenance_older_qualflow_wrote(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from pipeline.refi.qdc import NS_PROJECT
    from pipeline.refi.qdpx import _memo_and_origin

    def read(description: str) -> tuple[str | None, str]:
        sel = ET.Element(f"{{{NS_PROJECT}}}PlainTextSelection")
        ET.SubElement(sel, f"{{{NS_PROJECT}}}Description").text = description
        return _memo_and_origin(sel)

    old = "suggested by model local-evidence@1 (score 0.167); accepted by ana"
    assert read(f"{old}\n[qualflow] origin: model-accepted") == (None, "model-accepted")
    assert read(f"mine\n{old}\n[qualflow] origin: model-accepted") == ("mine", "model-accepted")
    assert read(f"{old}\n[qualflow] origin: human") == (old, "human")  # a human's memo stays
    assert read(f"{old}") == (old, "imported")  # another tool's annotation stays


def test_suggestions_export_says_state_and_who_decided(tmp_path: Path) -> None:
    """`suggestions export --state all` tells the states apart and names the deciders: the coder and
    time of a first-wins decision, and for independent review (the suggestion stays pending) every
    coder's own decision as ``coder:action``, joined by ``;``."""
    from datetime import datetime

    from sqlalchemy import update

    from pipeline.project.decisions import decide
    from pipeline.project.independent import decide_independent
    from pipeline.project.suggest import export_suggestions
    from pipeline.store.queries import get_or_create_coder
    from pipeline.store.schema import DecisionRow
    from review.testing import add_fake_suggestions

    proj = _small_project(tmp_path / "p")
    sids = add_fake_suggestions(proj.root, 5)
    with proj.store.transaction() as s:
        ana, ben = get_or_create_coder(s, "ana"), get_or_create_coder(s, "ben")
        decide(s, sids[0], ana, "accept")
        decide(s, sids[1], ben, "reject")
        decide(s, sids[2], ana, "accept")
        decide(s, sids[2], ana, "undo")  # back to pending, nobody decided it
        decide_independent(s, sids[3], ben, "reject")
        decide_independent(s, sids[3], ana, "accept")
        decide_independent(s, sids[4], ana, "accept")
        decide_independent(s, sids[4], ana, "undo")  # ana's own state is pending again
        for i, did in enumerate(s.scalars(select(DecisionRow.id).order_by(DecisionRow.id))):
            when = datetime(2026, 12, 1, 9, i, 5)
            s.execute(update(DecisionRow).where(DecisionRow.id == did).values(created_at=when))
    out = tmp_path / "all.csv"
    assert export_suggestions(proj, out, state="all") == 5
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "source,segment,start,end,code,score,rank,model,kind,state,decided_by,decided_at"
    with proj.store.transaction() as s:
        from pipeline.store.schema import SuggestionRow

        order = {sid: i for i, sid in enumerate(sids)}
        ids = s.scalars(
            select(SuggestionRow.id).order_by(SuggestionRow.start, SuggestionRow.rank, SuggestionRow.id)
        ).all()
    tails = {order[sid]: line.split(",", 9)[9] for sid, line in zip(ids, lines[1:], strict=True)}
    assert tails == {
        0: "accepted,ana,2026-12-01T09:00:05",
        1: "rejected,ben,2026-12-01T09:01:05",
        2: "pending,,",
        3: "pending,ana:accept;ben:reject,2026-12-01T09:05:05;2026-12-01T09:04:05",
        4: "pending,,",
    }
    assert all(line.startswith("int01,") and ",test-model@1,deductive," in line for line in lines[1:])
    pending = tmp_path / "pending.csv"
    assert export_suggestions(proj, pending) == 3  # independent decisions keep the suggestion pending
    proj.close()


def test_a_markdown_source_comes_back_as_markdown_from_a_qdpx(demo_project: Project, tmp_path: Path) -> None:
    """int04.md's heading is not a participant turn; after export and import it still is not (the
    source's Description carries its format), and a source memo is kept apart from that line."""
    from pipeline.refi.qdpx import FORMAT_MARK
    from pipeline.store.schema import SegmentRow

    def segments(p: Project, name: str) -> tuple[str, list[str]]:
        with p.store.transaction() as s:
            src = s.scalars(select(SourceRow).where(SourceRow.name == name, SourceRow.is_current)).one()
            texts = s.scalars(
                select(SegmentRow.text).where(SegmentRow.source_id == src.id).order_by(SegmentRow.start)
            ).all()
            return src.format, list(texts)

    fmt, before = segments(demo_project, "int04")
    assert fmt == "md"
    out = tmp_path / "a.qdpx"
    export_project_qdpx(demo_project, out)
    with zipfile.ZipFile(out) as zf:
        assert f"{FORMAT_MARK}md" in zf.read("project.qde").decode("utf-8")
    other = init_project(tmp_path / "other", name="demo")
    import_project_qdpx(other, out)
    assert segments(other, "int04") == ("md", before)
    with other.store.transaction() as s:
        meta = s.scalars(select(SourceRow.meta).where(SourceRow.name == "int04")).one()
    assert "memo" not in meta
    other.close()
