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


@pytest.mark.parametrize(
    ("model", "backend", "prefix"),
    [
        ("minilm", "sentence-transformers", "st:"),
        # an ONNX project (the default backend): the fine-tuned encoder is exported to float32 ONNX
        # and runs there too (int8 `onnx:`: tests/model/test_suggest_finetune.py)
        ("onnx-fp32:minilm", "onnx-fp32", "onnx-none-v2:"),
    ],
)
def test_fine_tuned_encoder_is_trained_logged_gated_and_used(
    tmp_path: Path, harness: None, model: str, backend: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
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
        (root / "qualflow.toml")
        .read_text(encoding="utf-8")
        .replace('model = "hashing"', f'model = "{model}"')
    )
    cfg = cfg.replace("fine_tune = false", "fine_tune = true").replace(
        "fine_tune_minutes = 10.0", "fine_tune_minutes = 0.05"
    )
    (root / "qualflow.toml").write_text(cfg, encoding="utf-8")
    config = load_config(root)
    assert config.suggester.fine_tune and config.suggester.fine_tune_minutes == 0.05

    # which encoder scores better on a tiny study is chance: the fine-tuned one is made to win here
    # (the other way: test_a_fine_tuned_encoder_that_scores_worse_is_not_kept)
    import flows.retrain as retrain

    real = retrain.keep_fine_tuned
    monkeypatch.setattr(retrain, "keep_fine_tuned", lambda t, b, m: real(max(t, b), b, m))
    process_interviews(str(root))
    code_sources(root, [f"int{i:02d}" for i in range(4)])
    params = flow_parameters(root, config, "qualflow-suggester")["retrain_suggester"]
    report = retrain_suggester(**params)
    assert report.decision.promote  # no champion yet: the gate promotes the first model

    proj = Project.open(root)
    champ = load_alias(proj, "qualflow-suggester")
    assert champ is not None and champ.encoder is not None
    base_fp = make_embedder(model, cache_dir=proj.cache_dir).fingerprint
    assert champ.embedding.startswith(f"{prefix}all-MiniLM-L6-v2-finetuned:") and champ.embedding != base_fp
    assert champ.encoder.startswith(f"{backend}:")
    assert Path(champ.encoder.split(":", 1)[1]).parts[-2:] == ("extra_files", "encoder")
    # the downloaded copy has the fingerprint the training folder had: process_interviews accepts it
    encoder = make_embedder(champ.encoder, cache_dir=proj.cache_dir)
    assert encoder.fingerprint == champ.embedding
    import mlflow

    run = mlflow.MlflowClient().get_run(str(champ.run_id))
    assert run.data.params["encoder"] == "fine-tuned"
    assert run.data.params["encoder.backend"] == backend
    assert run.data.params["embedding"] == champ.embedding
    assert run.data.metrics["finetune.steps"] >= 1 and "finetune.peak_rss_mb" in run.data.metrics
    assert run.data.params["finetune.loss"] == "triplet"  # a handful of codes: no in-batch negatives
    assert run.data.params["finetune.kept"] == "true"
    assert report.fine_tune is not None and report.fine_tune.startswith("fine-tuned encoder kept: macro_f1")
    proj.close()

    # a new interview is embedded with the champion's encoder (the base model's vectors would not
    # match the champion: choose_suggester refuses a champion of another embedding)
    (root / "inbox" / "int09.txt").write_text(interview(9)[0], encoding="utf-8")
    out = process_interviews(str(root))
    assert out.model == f"qualflow-suggester@{champ.version}"
    assert out.processed and out.processed[0].suggestions > 0
    from sqlalchemy import select

    from pipeline.store.schema import ModelVersionRow, SourceRow, SuggestionRow

    proj = Project.open(root)
    with proj.store.transaction() as session:
        used = set(
            session.scalars(
                select(ModelVersionRow.embedding)
                .join(SuggestionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
                .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
                .where(SourceRow.name == "int09", SuggestionRow.kind == "deductive")
            )
        )
    proj.close()
    assert used == {champ.embedding}  # the new interview's suggestions come from the fine-tuned encoder


def test_a_fine_tuned_encoder_that_scores_worse_is_not_kept(
    tmp_path: Path, harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the same suggester on the base encoder scores better on the held-out sources, the
    challenger is the base one: logged as such, the fine-tuned folder deleted, and `train` says so.
    (Which encoder wins on a tiny study is chance, so the comparison is made to go against the
    fine-tune; the real comparison is the doctest of ``keep_fine_tuned`` and the AnnoMI figures.)"""
    import flows.retrain as retrain
    from flows.process import process_interviews
    from flows.retrain import retrain_suggester
    from flows.serve import flow_parameters
    from flows.tracking import load_alias
    from pipeline.config import load_config
    from pipeline.embed.factory import make_embedder
    from pipeline.project.core import Project
    from tests.flows.test_flows import code_sources, make_project

    root = make_project(tmp_path / "p", 4)
    cfg = (
        (root / "qualflow.toml").read_text(encoding="utf-8").replace('model = "hashing"', 'model = "minilm"')
    )
    cfg = cfg.replace("fine_tune = false", "fine_tune = true").replace(
        "fine_tune_minutes = 10.0", "fine_tune_minutes = 0.05"
    )
    (root / "qualflow.toml").write_text(cfg, encoding="utf-8")
    config = load_config(root)
    seen: list[tuple[float, float]] = []
    real = retrain.keep_fine_tuned

    def worse(tuned: float, base: float, metric: str) -> tuple[bool, str]:
        seen.append((tuned, base))
        return real(min(tuned, base) - 0.01, base, metric)

    monkeypatch.setattr(retrain, "keep_fine_tuned", worse)
    process_interviews(str(root))
    code_sources(root, [f"int{i:02d}" for i in range(4)])
    report = retrain_suggester(**flow_parameters(root, config, "qualflow-suggester")["retrain_suggester"])
    assert len(seen) == 1 and report.decision is not None and report.decision.promote
    assert report.fine_tune is not None and report.fine_tune.startswith("fine-tuned encoder NOT kept")
    assert report.fine_tune in report.lines()

    proj = Project.open(root)
    champ = load_alias(proj, "qualflow-suggester")
    assert champ is not None and champ.encoder is None
    assert champ.embedding == make_embedder("minilm", cache_dir=proj.cache_dir).fingerprint
    import mlflow

    run = mlflow.MlflowClient().get_run(str(champ.run_id))
    assert run.data.params["encoder"] == "base" and run.data.params["finetune.kept"] == "false"
    assert run.data.metrics["finetune.base_heldout_macro_f1"] == pytest.approx(seen[0][1])
    assert run.data.metrics["finetune.heldout_macro_f1"] == pytest.approx(seen[0][0])
    assert not list((proj.cache_dir / "encoders").glob("run-*"))  # the unused folder is gone
    proj.close()


def test_train_fine_tune_with_one_code_coded_is_one_line_exit_2(tmp_path: Path, harness: None) -> None:
    """An exclusive codebook of which one code is coded so far: nothing to tell apart, so the
    classification fine-tune cannot run; `train --fine-tune` says so in one line, exit 2, nothing logged."""
    import subprocess
    import sys

    from flows.process import process_interviews
    from tests.flows.test_flows import interview, make_project

    root = make_project(tmp_path / "p", 4)
    cfg = (
        (root / "qualflow.toml").read_text(encoding="utf-8").replace('model = "hashing"', 'model = "minilm"')
    )
    (root / "qualflow.toml").write_text(
        cfg.replace("params = {}", "params = { exclusive = true }"), encoding="utf-8"
    )
    process_interviews(str(root))
    lines = ["source,start,end,code,coder"]
    first = interview(0)[1][0][2]
    for i in range(4):
        lines += [f"int{i:02d},{s},{e},{code},ana" for s, e, code in interview(i)[1] if code == first]
    (root / "codings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from pipeline.project.codings import import_codings
    from pipeline.project.core import Project

    proj = Project.open(root)
    import_codings(proj, root / "codings.csv")
    proj.close()
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", str(root), "train", "--fine-tune"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: --fine-tune: fine-tuning an exclusive codebook needs coded segments of at least two codes ("
    ), r.stderr
    assert errors[0].endswith(
        "code more segments, or train without --fine-tune (or set [suggester] fine_tune = false)"
    )
    assert not (root / ".qualflow" / "encoders").exists() or not any(
        (root / ".qualflow" / "encoders").iterdir()
    )
