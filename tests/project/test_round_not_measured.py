"""A round with nothing to compare reports no agreement (audit: a round nobody coded showed a perfect
1.000): not in what closing stores, prints, charts or logs to MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import tracking
from flows.rounds import RoundRun, log_round
from pipeline.project import rounds
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest
from pipeline.rounds_report import rounds_html

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "rounds"


def _project(tmp_path: Path, codings: str | None = None) -> Project:
    p = init_project(tmp_path / "t", name="t")
    ingest(p, [TINY / "s1.txt", TINY / "s2.txt"])
    import_codebook(p, TINY / "codebook.yaml")
    if codings is not None:
        f = tmp_path / "codings.csv"
        f.write_text("source,start,end,code,coder\n" + codings, encoding="utf-8")
        import_codings(p, f)
    rounds.start_round(p, "R1")
    rounds.assign(p, ["xena", "yuri"], sources=["s1", "s2"])
    return p


def _results(p: Project) -> dict:  # type: ignore[type-arg]
    data = rounds.round_data(p)
    people = None if rounds.not_measured(data) else rounds.round_panel(data, n_boot=0)
    return rounds.round_results(data, people)


def test_a_round_with_no_codings_measures_nothing(tmp_path: Path) -> None:
    p = _project(tmp_path)
    data = rounds.round_data(p)
    assert data.codings == ()
    assert rounds.not_measured(data) == "no codings in this round yet"
    # the panel alone would say 1.000 ("no code" against "no code" on all 24 segments)
    panel = rounds.round_panel(data, n_boot=0)
    assert panel.pooled.estimates["percent"].value == 1.0
    res = _results(p)
    assert res["coefficients"] == {}
    assert res["not_measured"] == "no codings in this round yet"
    assert res["units"] == 24 and "with_model" not in res
    stored = rounds.close_round(p, None, res, None).results
    assert stored["coefficients"] == {} and stored["not_measured"] == "no codings in this round yet"
    lines = RoundRun("R1", "run", "exp", stored).lines()
    assert lines[1] == "  agreement: n/a (no codings in this round yet)"
    assert not any("1.000" in line for line in lines)
    assert tracking.round_metrics(stored) == {"units": 24.0}
    html = rounds_html(rounds.closed_rounds(p))
    assert "n/a: no codings in this round yet" in html and "1.000" not in html
    # the MLflow run of the round: no coefficient, no agreement files, the reason as a tag
    import mlflow

    run_id = log_round.fn(p, "t-rounds", stored, None)
    run = mlflow.MlflowClient(tracking_uri=tracking.tracking_uri(p)).get_run(run_id)
    assert run.data.metrics == {"units": 24.0}
    assert run.data.tags["not_measured"] == "no codings in this round yet"
    p.close()


def test_a_round_coded_on_different_sources_measures_nothing(tmp_path: Path) -> None:
    p = _project(tmp_path, "s1,43,71,resources,xena\ns2,110,130,citizens,yuri\n")
    data = rounds.round_data(p)
    assert len(data.codings) == 2
    reason = rounds.not_measured(data)
    assert reason == (
        "no source coded by two of the round's coders yet (xena coded s1; yuri coded s2): nothing to compare"
    )
    res = _results(p)
    assert res["coefficients"] == {} and res["not_measured"] == reason
    assert RoundRun("R1", "run", "exp", res).lines()[1] == f"  agreement: n/a ({reason})"
    p.close()


def test_a_round_with_codings_off_the_round_codes_measures_nothing(tmp_path: Path) -> None:
    p = init_project(tmp_path / "t", name="t")
    ingest(p, [TINY / "s1.txt", TINY / "s2.txt"])
    import_codebook(p, TINY / "codebook.yaml")
    rounds.start_round(p, "R1")
    rounds.assign(p, ["xena", "yuri"], sources=["s1"], sample=0.2, seed=0)
    data = rounds.round_data(p)
    sampled = {(s.start, s.end) for s in data.segments}
    # both coders coded the same stretch of s1, outside the round's sampled segments
    start, end = next(
        (a, b) for a, b in [(43, 71), (72, 99), (100, 128), (158, 186)] if (a, b) not in sampled
    )
    f = tmp_path / "c.csv"
    f.write_text(
        f"source,start,end,code,coder\ns1,{start},{end},resources,xena\ns1,{start},{end},resources,yuri\n",
        encoding="utf-8",
    )
    import_codings(p, f)
    data = rounds.round_data(p)
    assert len(data.codings) == 2
    assert rounds.not_measured(data) == "no codings of the round's codes on its segments yet"
    p.close()


def test_a_round_both_coders_coded_is_measured(tmp_path: Path) -> None:
    p = _project(
        tmp_path,
        "s1,43,71,resources,xena\ns1,43,71,resources,yuri\ns1,72,99,citizens,yuri\ns2,110,130,citizens,yuri\n",
    )
    data = rounds.round_data(p)
    assert rounds.not_measured(data) is None
    res = _results(p)
    assert "not_measured" not in res
    # s1: 12 segments, one disagreement; s2: 12 segments, yuri's one coding against xena's nothing
    assert res["coefficients"]["percent"]["value"] == pytest.approx((3 * 24 - 2) / (3 * 24))
    assert res["one_coder_sources"] == {"s2": "yuri"}
    lines = RoundRun("R1", "run", "exp", res).lines()
    assert "  only yuri coded s2: the other coders' missing codings there count as no code" in lines
    p.close()
