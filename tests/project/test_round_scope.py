"""Which codings a round measures: the coding not measured by an earlier round (the new-user audit's
two-round scenario), not earlier rounds' codings of the same source, not retracted codings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.project import rounds
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest
from pipeline.store.schema import CoderRow, CodingRow

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "rounds"


def _project(tmp_path: Path) -> Project:
    p = init_project(tmp_path / "t", name="t")
    ingest(p, [TINY / "s1.txt", TINY / "s2.txt"])
    import_codebook(p, TINY / "codebook.yaml")
    import_codings(p, TINY / "codings.csv")  # imported before R1 opened: R1's double coding
    return p


def _close(p: Project) -> dict[str, float]:
    data = rounds.round_data(p)
    report = rounds.round_panel(data, n_boot=0)
    rounds.close_round(p, None, {}, None)
    out = {name: e.value for name, e in report.pooled.estimates.items()}
    for row in report.rows:
        out.update({f"{row.code}:{n}": e.value for n, e in row.estimates.items()})
    out["units"] = report.pooled.n_units
    return out


def _r1(p: Project) -> dict[str, float]:
    rounds.start_round(p, "R1")
    rounds.assign(p, ["xena", "yuri"], sources=["s1", "s2"])
    return _close(p)


def test_audit_scenario_r2_measures_its_own_codings(tmp_path: Path) -> None:
    p = _project(tmp_path)
    r1 = _r1(p)
    # R1 counts the double coding imported before it opened (unchanged by the rule)
    assert r1["units"] == 24
    assert r1["percent"] == pytest.approx(0.778, abs=5e-4)
    assert r1["cohen"] == pytest.approx(0.564, abs=5e-4)
    import_codebook(p, TINY / "codebook2.yaml")  # adds "training"
    rounds.start_round(p, "R2")
    rounds.assign(p, ["xena", "yuri"], sources=["s2"])
    import_codings(p, TINY / "r2.csv")  # R2's only coding: 3 codings of "training"
    data = rounds.round_data(p)
    assert data.codes == ("resources", "coordination", "citizens", "training")
    assert sorted((c.coder, c.code) for c in data.codings) == [
        ("xena", "training"),
        ("yuri", "training"),
        ("yuri", "training"),
    ]
    r2 = _close(p)
    assert r2["units"] == 12
    assert r2["training:percent"] == pytest.approx(11 / 12)  # 0.917
    assert r2["training:cohen"] == pytest.approx(0.625)
    # pooled over the round codebook's 4 codable codes; the 3 nobody applied agree on every segment
    assert r2["percent"] == pytest.approx((11 / 12 + 3) / 4)  # 0.979, not the audit's 0.771
    # R1's agreement, recomputed after R2, is unchanged
    r1_again = rounds.round_panel(rounds.round_data(p, "R1"), n_boot=0)
    assert r1_again.pooled.estimates["percent"].value == pytest.approx(r1["percent"])


def test_codings_before_the_round_on_the_same_source_do_not_count(tmp_path: Path) -> None:
    p = _project(tmp_path)
    _r1(p)
    import_codebook(p, TINY / "codebook2.yaml")
    rounds.start_round(p, "R2")
    rounds.assign(p, ["xena", "yuri"], sources=["s2"])
    assert rounds.round_data(p).codings == ()  # R1's codings of s2 are not R2's


def test_codings_imported_between_rounds_count_for_the_next(tmp_path: Path) -> None:
    p = _project(tmp_path)
    _r1(p)
    import_codebook(p, TINY / "codebook2.yaml")
    import_codings(p, TINY / "r2.csv")  # coded offline for R2, imported before it opened
    rounds.start_round(p, "R2")
    rounds.assign(p, ["xena", "yuri"], sources=["s2"])
    assert sorted(c.code for c in rounds.round_data(p).codings) == ["training"] * 3


def test_a_retracted_coding_does_not_count(tmp_path: Path) -> None:
    p = _project(tmp_path)
    _r1(p)
    import_codebook(p, TINY / "codebook2.yaml")
    rounds.start_round(p, "R2")
    rounds.assign(p, ["xena", "yuri"], sources=["s2"])
    import_codings(p, TINY / "r2.csv")
    with p.store.transaction() as s:
        yuri = s.scalar(select(CoderRow.id).where(CoderRow.name == "yuri"))
        row = s.scalar(
            select(CodingRow).where(
                CodingRow.coder_id == yuri, CodingRow.code == "training", CodingRow.start == 110
            )
        )
        assert row is not None
        row.active = False
    data = rounds.round_data(p)
    assert sorted((c.coder, c.start) for c in data.codings) == [("xena", 131), ("yuri", 131)]
    assert rounds.round_panel(data, n_boot=0).rows[-1].estimates["percent"].value == pytest.approx(1.0)


def test_a_coding_stored_while_a_round_closes_counts_for_the_next_round_not_for_none(tmp_path: Path) -> None:
    """Closing stamps the time its codings were read: a coding stored between the panel and the
    stamp is neither in the closed round's results nor lost to the next round."""
    p = _project(tmp_path)
    rounds.start_round(p, "R1")
    rounds.assign(p, ["xena", "yuri"], sources=["s1", "s2"])
    data = rounds.round_data(p)
    assert data.as_of is not None
    import_codebook(p, TINY / "codebook2.yaml")
    import_codings(p, TINY / "r2.csv")  # stored after the panel's codings were read
    info = rounds.close_round(p, None, {}, None, closed_at=data.as_of)
    assert info.name == "R1"
    assert rounds.round_data(p, "R1").codings == data.codings
    rounds.start_round(p, "R2")
    rounds.assign(p, ["xena", "yuri"], sources=["s2"])
    r2 = rounds.round_data(p)
    assert sorted((c.coder, c.code) for c in r2.codings) == [
        ("xena", "training"),
        ("yuri", "training"),
        ("yuri", "training"),
    ]


def test_a_project_file_coded_long_ago_and_imported_during_a_round_belongs_to_it(tmp_path: Path) -> None:
    """A REFI-QDA import keeps the date each coding was made in the other tool (created_at); the round
    counts it by when it was stored here, so a MAXQDA coder's old work imported during R2 is R2's."""
    from datetime import datetime

    from pipeline.domain import Coding
    from pipeline.project.codings import add_codings
    from pipeline.store.queries import current_sources, require_codebook

    p = _project(tmp_path)
    _r1(p)
    import_codebook(p, TINY / "codebook2.yaml")
    rounds.start_round(p, "R2")
    rounds.assign(p, ["xena", "zed"], sources=["s2"])
    long_ago = datetime(2020, 1, 1)
    with p.store.transaction() as s:
        cb_row, _ = require_codebook(s)
        rows = {r.name: r for r in current_sources(s)}
        add_codings(
            s, [Coding("s2", 0, 5, "training", "zed")], rows, cb_row.id, created_at=lambda c: long_ago
        )
    with p.store.transaction() as s:
        row = s.scalars(select(CodingRow).where(CodingRow.code == "training")).one()
        assert row.created_at == long_ago and row.stored_at is not None and row.stored_at > long_ago
    assert [(c.coder, c.code) for c in rounds.round_data(p).codings] == [("zed", "training")]


def test_a_settled_unit_stays_settled_when_its_interview_gets_a_new_version(tmp_path: Path) -> None:
    """Re-ingesting an edited interview carries the consensus codings to the new offsets; the lead's
    settlement of the unit goes with them, so the unit is not offered for adjudication again."""
    from pipeline.project import adjudication
    from review.auth import add_coder

    p = _project(tmp_path)
    with p.store.transaction() as s:
        add_coder(s, "lea", role="lead", password="correct horse 1")
    rounds.start_round(p, "R1")
    rounds.assign(p, ["xena", "yuri"], sources=["s1", "s2"])
    _, units = adjudication.units_to_adjudicate(p)
    u = units[0]
    adjudication.adjudicate(p, "lea", source=u.source, start=u.start, end=u.end, choice="xena")
    old = (TINY / f"{u.source}.txt").read_text(encoding="utf-8")
    edited = tmp_path / "edited" / f"{u.source}.txt"
    edited.parent.mkdir()
    edited.write_text("Interviewer: Before we start, thank you.\n" + old, encoding="utf-8")
    ingest(p, [edited])
    shift = len("Interviewer: Before we start, thank you.\n")
    _, again = adjudication.units_to_adjudicate(p)
    moved = [v for v in again if (v.source, v.start, v.end) == (u.source, u.start + shift, u.end + shift)]
    assert len(moved) == 1 and moved[0].adjudication is not None and moved[0].adjudication["choice"] == "xena"
    assert len(again) == len(units)


def test_a_settlement_lists_the_identical_consensus_coding_another_made(tmp_path: Path) -> None:
    """The consensus coder has one active coding of a code on a span, as every coder: a settlement whose
    code another settlement gave the unit already lists that coding (its memo gains a line) and makes
    no second; re-settling keeps a coding another settlement lists."""
    from pipeline.project import adjudication
    from pipeline.project.rounds import CONSENSUS
    from pipeline.store.schema import AdjudicationRow, SourceRow
    from review.auth import add_coder

    p = _project(tmp_path)
    with p.store.transaction() as s:
        add_coder(s, "lea", role="lead", password="correct horse 1")
    rounds.start_round(p, "R1")
    rounds.assign(p, ["xena", "yuri"], sources=["s1", "s2"])
    _, units = adjudication.units_to_adjudicate(p)
    u = next(u for u in units if set(u.codes["xena"]) - set(u.agreed))
    code = sorted(set(u.codes["xena"]) - set(u.agreed))[0]  # a code the settlement "neither" leaves out
    with p.store.transaction() as s:  # as an earlier round's settlement of the same unit would have left it
        consensus = adjudication._consensus_coder(s)
        src = s.scalar(select(SourceRow).where(SourceRow.name == u.source, SourceRow.is_current))
        assert src is not None and consensus.name == CONSENSUS
        before = CodingRow(
            source_id=src.id,
            start=u.start,
            end=u.end,
            code=code,
            codebook_version_id=rounds.round_data(p).round.codebook_version_id,
            coder_id=consensus.id,
            origin="consensus",
            memo="adjudication 0 by lea (yuri)",
        )
        s.add(before)
        s.flush()
        s.add(
            AdjudicationRow(
                round_id=rounds.round_data(p).round.id,
                source_id=src.id,
                start=u.start - 1,  # another unit's row stands in for another round's
                end=u.end,
                lead_id=consensus.id,
                choice="yuri",
                codes=[code],
                coding_ids=[before.id],
            )
        )
    settled = adjudication.adjudicate(p, "lea", source=u.source, start=u.start, end=u.end, choice="xena")
    assert before.id in settled["coding_ids"]
    with p.store.transaction() as s:
        rows = s.scalars(
            select(CodingRow).where(
                CodingRow.coder_id == consensus.id, CodingRow.start == u.start, CodingRow.end == u.end
            )
        ).all()
        assert sorted(r.id for r in rows if r.active) == sorted(settled["coding_ids"])
        kept = next(r for r in rows if r.id == before.id)
        assert kept.memo == f"adjudication 0 by lea (yuri)\n\nadjudication {settled['id']} by lea (xena)"
    # settled again, without that code: the coding stays, the other settlement still lists it
    again = adjudication.adjudicate(p, "lea", source=u.source, start=u.start, end=u.end, choice="neither")
    assert before.id not in again["coding_ids"]
    with p.store.transaction() as s:
        assert s.get(CodingRow, before.id).active  # type: ignore[union-attr]
