"""Rounds end to end on the demo data: two rounds closed (the second after a codebook edit), two MLflow
runs, the report's chart of both rounds; adjudication records the consensus and what it settled."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="qualflow-prefect-"))
pytestmark = pytest.mark.flow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def harness():  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def test_two_rounds_two_runs_one_chart_and_adjudication(harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from flows.rounds import round_close
    from pipeline.project import adjudication, rounds
    from pipeline.project.codebooks import import_codebook
    from pipeline.project.core import Project
    from pipeline.project.report import write_project_report
    from pipeline.store.schema import AdjudicationRow, CodingRow
    from review.auth import add_coder
    from review.testing import demo_template

    root = tmp_path / "proj"
    shutil.copytree(demo_template(tmp_path.parent), root)
    p = Project.open(root)
    with p.store.transaction() as s:
        add_coder(s, "lea", role="lead", password="correct horse 1")
    rounds.start_round(p, "R1")
    rounds.assign(p, ["sara", "reza"], sources=["int01", "int02"])
    # adjudicate the first disagreement of R1: take reza's codes
    data, units = adjudication.units_to_adjudicate(p)
    assert units and data.coders == ("reza", "sara")
    u = units[0]
    settled = adjudication.adjudicate(
        p, "lea", source=u.source, start=u.start, end=u.end, choice="reza", memo="reza's reading fits"
    )
    assert settled["codes"] == sorted(u.codes["reza"]) and settled["settled_coding_ids"]
    with p.store.transaction() as s:
        row = s.get(AdjudicationRow, settled["id"])
        assert row is not None and row.memo == "reza's reading fits"
        made = [s.get(CodingRow, i) for i in settled["coding_ids"]]
        assert all(
            c is not None and c.origin == "consensus" and f"adjudication {row.id}" in (c.memo or "")
            for c in made
        )
    p.close()

    r1 = round_close(str(root), n_boot=50)
    assert (
        r1.results["consensus"]["reza"]["percent"]["value"]
        >= r1.results["consensus"]["sara"]["percent"]["value"]
    )
    p = Project.open(root)
    import_codebook(p, REPO / "data" / "demo" / "codebook_round2.yaml")
    rounds.start_round(p, "R2")
    rounds.assign(p, ["sara", "reza"], sources=["int03"])
    p.close()
    r2 = round_close(str(root), n_boot=50)
    assert r2.results["codebook_version"] == r1.results["codebook_version"] + 1
    assert r2.results["codebook_changes"]["added"] == ["citizen-burden"]
    assert r2.results["codebook_changes"]["redefined"] == ["inter-agency-coordination"]

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("qualflow-rounds")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.params["round"] for r in runs) == ["R1", "R2"]
    for run, res in ((client.get_run(r1.run_id), r1.results), (client.get_run(r2.run_id), r2.results)):
        k = res["coefficients"]["cohen"]
        assert run.data.metrics["cohen"] == pytest.approx(k["value"])
        assert run.data.metrics["cohen.ci_low"] == pytest.approx(k["ci_low"])
        assert run.data.params["coders"] == "reza,sara"

    p = Project.open(root)
    out = write_project_report(p, tmp_path / "report")
    p.close()
    html = (
        out.read_text(encoding="utf-8")
        if out.is_file()
        else (out / "report.html").read_text(encoding="utf-8")
    )
    assert "Agreement round by round" in html and ">R1<" in html and ">R2<" in html
    assert "citizen-burden" in html and "agreement per round with 95% intervals" in html
