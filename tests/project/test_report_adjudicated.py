"""What `qualflow report` counts once a lead adjudicated a unit and an interview was re-ingested: people
as coders, the consensus codings apart and in place of the codings they settled, a note on codings left
on an older version of a source."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pipeline.project import adjudication, rounds
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest
from pipeline.project.report import analysis_codings, write_project_report

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "rounds"


def _project(tmp_path: Path) -> Project:
    from review.auth import add_coder

    p = init_project(tmp_path / "t", name="t")
    ingest(p, [TINY / "s1.txt", TINY / "s2.txt"])
    import_codebook(p, TINY / "codebook.yaml")
    import_codings(p, TINY / "codings.csv")  # 72 codings by xena and yuri
    with p.store.transaction() as s:
        add_coder(s, "lea", role="lead", password="correct horse 1")
    rounds.start_round(p, "R1")
    rounds.assign(p, ["xena", "yuri"], sources=["s1", "s2"])
    return p


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_consensus_replaces_the_codings_it_settled_and_is_no_coder(tmp_path: Path) -> None:
    p = _project(tmp_path)
    # s1 100..128: yuri resources, coordination, citizens; xena coordination -> the lead takes xena's
    settled = adjudication.adjudicate(p, "lea", source="s1", start=100, end=128, choice="xena")
    assert settled["codes"] == ["coordination"] and len(settled["settled_coding_ids"]) == 4
    with p.store.transaction() as s:
        codings, replaced = analysis_codings(s)
    assert replaced == 4 and len(codings) == 72 - 4 + 1
    assert sorted((c.coder, c.code) for c in codings if (c.source, c.start) == ("s1", 100)) == [
        ("consensus", "coordination")
    ]
    notes: list[str] = []
    out = write_project_report(p, tmp_path / "report", warn=notes.append).parent
    assert notes == []
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "68 codings by 2 coders, 1 consensus coding from adjudication" in html
    assert {r["coders"] for r in _rows(out / "corpus.csv")} == {"xena; yuri"}
    assert "Agreement to date on every active coding of the current interview versions" in html
    assert "segments &times; 3 codes</td>" in html and "<b>prevalence</b>: the share of the ratings" in html
    uses = {r["code"]: int(r["codings"]) for r in _rows(out / "codebook.csv")}
    # the fixture's 25, 21 and 26 codings: yuri's resources and citizens on the unit overruled,
    # xena's and yuri's coordination there replaced by the consensus's one
    assert uses == {"resources": 25 - 1, "coordination": 21 - 2 + 1, "citizens": 26 - 1}
    quotes = _rows(out / "exemplar_quotes.csv")
    assert not [
        q for q in quotes if (q["source"], q["start"]) == ("s1", "100") and q["code"] != "coordination"
    ]
    # co-occurrence per coder: the consensus's unit holds coordination only
    co = {r["code"]: r for r in _rows(out / "cooccurrence_counts.csv")}
    assert int(co["coordination"]["coordination"]) == 20


def test_codings_left_on_an_older_version_are_noted(tmp_path: Path) -> None:
    p = _project(tmp_path)
    old = (TINY / "s1.txt").read_text(encoding="utf-8")
    edited = tmp_path / "edited" / "s1.txt"
    edited.parent.mkdir()
    edited.write_text(old.replace("Money is always short here.", "Money is short."), encoding="utf-8")
    ingest(p, [edited])  # the 6 codings of the edited sentence stay on the old version
    notes: list[str] = []
    out = write_project_report(p, tmp_path / "report", warn=notes.append).parent
    assert notes == ["6 codings on older versions of 1 source are not counted (qualflow sources --versions)"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "6 codings on older versions of 1 source are not counted (qualflow sources --versions)." in html


def test_a_long_coding_settled_on_one_segment_keeps_the_rest_of_its_passage(tmp_path: Path) -> None:
    """An adjudication of one segment replaces a coder's long coding there only: the parts of the
    passage outside the unit still count (review finding: the whole coding vanished)."""
    from sqlalchemy import select

    from pipeline.domain import Coding
    from pipeline.project.codings import add_codings
    from pipeline.store.schema import CodebookVersionRow, SourceRow

    p = _project(tmp_path)
    try:
        with p.store.transaction() as s:
            srcs = {r.name: r for r in s.scalars(select(SourceRow).where(SourceRow.is_current))}
            cb = s.scalar(select(CodebookVersionRow.id).order_by(CodebookVersionRow.id.desc()))
            assert cb is not None
            add_codings(s, [Coding("s1", 43, 236, "citizens", "xena")], srcs, cb)
        adjudication.adjudicate(p, "lea", source="s1", start=100, end=128, choice="yuri")
        with p.store.transaction() as s:
            kept = analysis_codings(s)[0]
        mine = {(c.start, c.end) for c in kept if (c.coder, c.code) == ("xena", "citizens")}
        assert {(43, 100), (128, 236)} <= mine and (43, 236) not in mine
    finally:
        p.close()
