"""The ``agreement_report`` flow: the agreement panel of every coder, the champion model included,
logged to an MLflow experiment (``<experiment>-agreement``) so agreement can be followed run by run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import tracking
from flows.process import make_embedder, open_project
from flows.retrain import load_champion, load_training_set
from flows.retries import io_task
from pipeline.errors import NotFoundError
from pipeline.project import retrain as retraining
from pipeline.project.core import Project
from pipeline.project.retrain import TrainingSet

if TYPE_CHECKING:
    from pipeline.agreement_report import AgreementReport
    from pipeline.domain import Coding


@dataclass
class AgreementRun:
    run_id: str
    experiment: str
    coders: list[str]
    metrics: dict[str, float]

    def lines(self) -> list[str]:
        pooled = ", ".join(
            f"{k.removeprefix('pooled.')} {v:.3f}" for k, v in self.metrics.items() if k.startswith("pooled.")
        )
        return [
            f"agreement of {', '.join(self.coders)}: {pooled}",
            f"MLflow: run {self.run_id} in experiment {self.experiment!r}",
        ]


@task(name="model-codings", cache_policy=NO_CACHE)
def champion_codings(champion: tracking.RegisteredModel, ts: TrainingSet, coder: str) -> list[Coding]:
    return retraining.predicted_codings(champion.model, ts, coder)


@task(name="agreement-panel", cache_policy=NO_CACHE)
def panel(
    project: Project, ts: TrainingSet, coder: str, codings: list[Coding], n_boot: int, seed: int
) -> AgreementReport:
    return retraining.agreement_with_model(project, ts, coder, codings, n_boot, seed)


@io_task("log-agreement")
def log_agreement(
    project: Project, experiment: str, report: AgreementReport, champion: tracking.RegisteredModel
) -> str:
    from pipeline.agreement_report import to_csv, to_html, to_json

    return tracking.log_agreement_run(
        project,
        experiment=experiment,
        metrics=tracking.agreement_metrics(report),
        files={
            "agreement.json": to_json(report),
            "agreement.csv": to_csv(report),
            "agreement.html": to_html(report),
        },
        tags={"model": f"{champion.name}@{champion.version}", "coders": ",".join(report.coders)},
    )


@flow(name="agreement_report", log_prints=False)
def agreement_report(
    project_dir: str,
    registered_model: str = tracking.DEFAULT_REGISTERED_MODEL,
    n_boot: int = 1000,
    experiment: str | None = None,
    seed: int = 0,
) -> AgreementRun:
    """Agreement of all human coders and the champion model on the labelled sources, to MLflow."""
    project = open_project(project_dir)
    embedder = make_embedder(project)
    ts = load_training_set(project, embedder)
    champion = load_champion(project, registered_model)
    if champion is None:
        raise NotFoundError(f"no {registered_model}@champion yet; run `qualflow train` first")
    coder = f"model:{champion.name}@{champion.version}"
    report = panel(project, ts, coder, champion_codings(champion, ts, coder), n_boot, seed)
    name = experiment or f"{project.config.mlflow_experiment}-agreement"
    run_id = log_agreement(project, name, report, champion)
    project.close()
    return AgreementRun(run_id, name, list(report.coders), tracking.agreement_metrics(report))
