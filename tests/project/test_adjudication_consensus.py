"""Coder-vs-consensus agreement and adjudicating a closed round, on the audit's tiny team study: ann and
ben double-code 12 segments of s1 and s2 on 3 codes and disagree on 4; the lead lea settles those 4
(s1 153-189 and 247-284: ann's codes; s2 91-126: neither; s2 252-278: ben's codes). By hand, on the 4
settled units x 3 codes: ann agrees with the consensus on 10 of 12, ben on 8 of 12."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pipeline.errors import NotFoundError
from pipeline.project import adjudication, rounds
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "adjudication"
SETTLE = [
    ("s1", 153, 189, "ann"),
    ("s1", 247, 284, "ann"),
    ("s2", 91, 126, "neither"),
    ("s2", 252, 278, "ben"),
]


def _project(tmp_path: Path) -> Project:
    from review.auth import add_coder

    p = init_project(tmp_path / "t", name="t")
    ingest(p, [TINY / "s1.txt", TINY / "s2.txt"])
    import_codebook(p, TINY / "codebook.yaml")
    import_codings(p, TINY / "codings.csv")
    with p.store.transaction() as s:
        add_coder(s, "lea", role="lead", password="correct horse 1")
    rounds.start_round(p, "R1")
    rounds.assign(p, ["ann", "ben"], sources=["s1", "s2"])
    return p


def _settle(p: Project, round_name: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    return [
        adjudication.adjudicate(p, "lea", source=src, start=a, end=b, choice=c, round_name=round_name)
        for src, a, b, c in SETTLE
    ]


def _close(p: Project, n_boot: int = 0) -> dict:  # type: ignore[type-arg]
    """What the round_close flow stores (without Prefect and MLflow)."""
    data = rounds.round_data(p)
    results = rounds.round_results(data, rounds.round_panel(data, n_boot=n_boot))
    results["n_boot"], results["seed"] = n_boot, 0
    consensus = adjudication.consensus_agreement(p, data, n_boot=n_boot)
    if consensus:
        results["consensus"] = consensus
    return rounds.close_round(p, None, results, None, closed_at=data.as_of).results


def test_the_disagreements_are_the_four_units(tmp_path: Path) -> None:
    p = _project(tmp_path)
    _, units = adjudication.units_to_adjudicate(p)
    assert [(u.source, u.start, u.end) for u in units] == [(s, a, b) for s, a, b, _ in SETTLE]


def test_consensus_agreement_is_on_the_adjudicated_units_only(tmp_path: Path) -> None:
    p = _project(tmp_path)
    _settle(p)
    co = adjudication.consensus_agreement(p, n_boot=0)
    assert co["ann"]["percent"]["value"] == pytest.approx(10 / 12)  # not 34/36 over all 12 segments
    assert co["ben"]["percent"]["value"] == pytest.approx(8 / 12)  # not 32/36
    assert {e["n_units"] for c in co.values() for e in c.values()} == {4}


def test_partly_adjudicated_round_counts_only_the_settled_units(tmp_path: Path) -> None:
    p = _project(tmp_path)
    src, a, b, c = SETTLE[1]  # s1 247-284, ann's codes: ann cost, ben trust
    adjudication.adjudicate(p, "lea", source=src, start=a, end=b, choice=c)
    co = adjudication.consensus_agreement(p, n_boot=0)
    assert co["ann"]["percent"]["value"] == pytest.approx(1.0)
    assert co["ben"]["percent"]["value"] == pytest.approx(1 / 3)
    assert co["ann"]["percent"]["n_units"] == 1


def test_adjudicating_after_close_updates_the_stored_results(tmp_path: Path) -> None:
    from pipeline.rounds_report import rounds_html

    p = _project(tmp_path)
    closed = _close(p)
    assert "consensus" not in closed  # nothing adjudicated at closing
    with pytest.raises(NotFoundError, match=r"--round R1 \(the latest closed round"):
        _settle(p)  # no open round: the fix is --round R1, not "start a round"
    settled = _settle(p, "R1")
    assert settled[-1]["round_closed"]
    assert settled[-1]["consensus"]["ben"]["percent"]["value"] == pytest.approx(8 / 12)
    (stored,) = rounds.closed_rounds(p)
    assert stored["consensus"]["ann"]["percent"]["value"] == pytest.approx(10 / 12)
    assert stored["consensus"]["ben"]["percent"]["n_units"] == 4
    assert stored["coefficients"] == closed["coefficients"]  # the round's own figures are unchanged
    assert "(4 adjudicated segments)" in rounds_html([stored])


def test_adjudicated_before_close_is_stored_at_close(tmp_path: Path) -> None:
    p = _project(tmp_path)
    assert _settle(p)[0]["round_closed"] is False
    closed = _close(p)
    assert closed["consensus"]["ann"]["percent"]["value"] == pytest.approx(10 / 12)


def test_round_close_and_agreement_give_the_same_intervals(tmp_path: Path) -> None:
    """The same units, codes, resamples and seed: the same interval (round close used 500 resamples by
    default, `qualflow agreement` 1000: [0.667, 0.972] against [0.694, 0.972] on this study)."""
    from cli.analysis_commands import agreement
    from cli.flows_commands import run_round_close
    from cli.round_commands import round_close
    from pipeline.project.agreement import project_agreement

    def default(f, name: str):  # type: ignore[no-untyped-def]
        return inspect.signature(f).parameters[name].default

    assert (
        default(round_close, "n_boot") == default(agreement, "n_boot") == default(run_round_close, "n_boot")
    )
    assert default(round_close, "seed") == default(agreement, "seed") == 0
    p = _project(tmp_path)
    n_boot = default(agreement, "n_boot")
    a = project_agreement(p, coders=["ann", "ben"], n_boot=n_boot, seed=0).pooled.estimates
    r = rounds.round_panel(rounds.round_data(p), n_boot=n_boot, seed=0).pooled.estimates
    assert (a["percent"].ci_low, a["percent"].ci_high) == pytest.approx((25 / 36, 35 / 36))  # 0.694, 0.972
    for name in a:
        assert (r[name].value, r[name].ci_low, r[name].ci_high) == (
            a[name].value,
            a[name].ci_low,
            a[name].ci_high,
        )


def test_round_close_says_its_resamples_and_the_consensus_units() -> None:
    from flows.rounds import RoundRun

    e = {"value": 0.5, "ci_low": 0.1, "ci_high": 0.8, "n_units": 4}
    lines = RoundRun(
        "R1",
        "run",
        "exp",
        {"coders": ["ann"], "units": 12, "n_boot": 1000, "seed": 0, "consensus": {"ann": {"percent": e}}},
    ).lines()
    assert "  intervals: 95% percentile bootstrap, 1000 resamples, seed 0" in lines
    assert "  ann vs consensus (on the 4 adjudicated segments): percent 0.500" in lines


def test_a_project_with_adjudications_exports_and_imports_again(tmp_path: Path) -> None:
    """The consensus codings of adjudication (coder and origin `consensus`) used to stop `export qdpx`
    ("origin 'consensus' is not one of ...") and `codings import` of what `codings export` wrote; both
    now carry them, and agreement still leaves them out of the coders' panel."""
    from pipeline.project.agreement import project_agreement
    from pipeline.project.codings import export_codings
    from pipeline.project.exchange import export_project_qdpx, import_project_qdpx
    from pipeline.store.queries import load_codings

    p = _project(tmp_path)
    _settle(p)
    with p.store.transaction() as s:
        mine = sorted((c.source, c.start, c.end, c.code) for c in load_codings(s) if c.coder == "consensus")
    assert mine
    export_project_qdpx(p, tmp_path / "t.qdpx")
    export_codings(p, tmp_path / "t.csv")

    q = init_project(tmp_path / "q", name="q")
    report = import_project_qdpx(q, tmp_path / "t.qdpx")
    assert report.codings["consensus"] == len(mine)
    with q.store.transaction() as s:
        back = [c for c in load_codings(s) if c.coder == "consensus"]
    assert sorted((c.source, c.start, c.end, c.code) for c in back) == mine
    assert {c.origin for c in back} == {"consensus"}
    assert tuple(project_agreement(q, n_boot=0).coders) == ("ann", "ben")

    r = init_project(tmp_path / "r", name="r")
    ingest(r, [TINY / "s1.txt", TINY / "s2.txt"])
    import_codebook(r, TINY / "codebook.yaml")
    added = import_codings(r, tmp_path / "t.csv")
    assert added["consensus"] == len(mine)
