"""Fine-tuning the encoder in the retrain flow (tiny budget, tiny study): logged inside the MLflow
model with its own embedding fingerprint, gated like any challenger, and used by process_interviews."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="qualflow-prefect-"))

pytestmark = [pytest.mark.flow, pytest.mark.model]


@pytest.fixture(scope="module")
def harness():  # type: ignore[no-untyped-def]
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_fine_tuned_encoder_is_trained_logged_gated_and_used(tmp_path: Path, harness: None) -> None:
    from flows.process import process_interviews
    from flows.retrain import retrain_suggester
    from flows.serve import flow_parameters
    from flows.tracking import load_alias
    from pipeline.config import load_config
    from pipeline.embed.factory import make_embedder
    from pipeline.project.core import Project
    from tests.flows.test_flows import code_sources, interview, make_project

    root = make_project(tmp_path / "p", 4)
    cfg = (
        (root / "qualflow.toml").read_text(encoding="utf-8").replace('model = "hashing"', 'model = "minilm"')
    )
    cfg = cfg.replace("fine_tune = false", "fine_tune = true").replace(
        "fine_tune_minutes = 10.0", "fine_tune_minutes = 0.05"
    )
    (root / "qualflow.toml").write_text(cfg, encoding="utf-8")
    config = load_config(root)
    assert config.suggester.fine_tune and config.suggester.fine_tune_minutes == 0.05

    process_interviews(str(root))
    code_sources(root, [f"int{i:02d}" for i in range(4)])
    params = flow_parameters(root, config, "qualflow-suggester")["retrain_suggester"]
    report = retrain_suggester(**params)
    assert report.decision.promote  # no champion yet: the gate promotes the first model

    proj = Project.open(root)
    champ = load_alias(proj, "qualflow-suggester")
    assert champ is not None and champ.encoder is not None
    base_fp = make_embedder("minilm").fingerprint
    assert champ.embedding.startswith("st:all-MiniLM-L6-v2-finetuned:") and champ.embedding != base_fp
    encoder = make_embedder(champ.encoder)
    assert encoder.fingerprint == champ.embedding  # the downloaded copy is the trained one
    import mlflow

    run = mlflow.MlflowClient().get_run(str(champ.run_id))
    assert run.data.params["encoder"] == "fine-tuned"
    assert run.data.metrics["finetune.steps"] >= 1 and "finetune.peak_rss_mb" in run.data.metrics
    assert run.data.params["finetune.loss"] == "triplet"  # a handful of codes: no in-batch negatives
    proj.close()

    # a new interview is embedded with the champion's encoder (the base model's vectors would not
    # match the champion: choose_suggester refuses a champion of another embedding)
    (root / "inbox" / "int09.txt").write_text(interview(9)[0], encoding="utf-8")
    out = process_interviews(str(root))
    assert out.model == f"qualflow-suggester@{champ.version}"
    assert out.processed and out.processed[0].suggestions > 0
