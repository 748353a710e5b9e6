"""MLflow at the edge: the only module of qualflow that imports mlflow.

Every function takes the project and sets the tracking and registry URI for that call (never at
import time). The tracking store is ``[mlflow_tracking_uri]`` of ``qualflow.toml`` (relative SQLite
paths inside the project); experiments this module creates keep their artifacts in
``<project>/mlruns``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.agreement_report import AgreementReport
from pipeline.config import DEFAULT_REGISTERED_MODEL, resolve_sqlite_url
from pipeline.errors import ConfigError
from pipeline.project.core import Project

if TYPE_CHECKING:
    import numpy.typing as npt
    from mlflow import MlflowClient

    from models.base import BaseSuggester

CHAMPION = "champion"
PARAM_MAX = 6000  # MLflow's limit on a parameter value is 6000 characters
REQUIREMENTS = ("numpy", "scipy", "scikit-learn")


def tracking_uri(project: Project) -> str:
    """The project's MLflow tracking URI (a relative ``sqlite:///`` path made absolute)."""
    return resolve_sqlite_url(project.config.mlflow_tracking_uri, project.root)


def artifact_root(project: Project) -> Path:
    """Where experiments created by qualflow keep their artifacts: ``<project>/mlruns``."""
    return project.root / "mlruns"


def _client(project: Project) -> MlflowClient:
    import mlflow

    uri = tracking_uri(project)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(project: Project, name: str) -> str:
    """The id of experiment ``name``, created with its artifacts in ``<project>/mlruns`` if new."""
    client = _client(project)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    root = artifact_root(project)
    root.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(name, artifact_location=(root / name).resolve().as_uri()))


@dataclass(frozen=True)
class RegisteredModel:
    """A model version loaded from the registry, with what the run recorded about it."""

    model: BaseSuggester
    name: str
    version: str
    run_id: str | None
    embedding: str
    metrics: dict[str, float]


def load_alias(
    project: Project, name: str = DEFAULT_REGISTERED_MODEL, alias: str = CHAMPION
) -> RegisteredModel | None:
    """Load ``models:/<name>@<alias>`` (``None`` when the model or the alias does not exist yet).

    A local SQLite store that does not exist yet holds no model: it is not created here (creating
    it takes seconds, and a first ``process`` run has nothing to load).
    """
    uri = tracking_uri(project)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    client = _client(project)
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise
    model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    embedding, metrics = "", {}
    if mv.run_id:
        run = client.get_run(mv.run_id)
        embedding = run.data.params.get("embedding", "")
        metrics = dict(run.data.metrics)
    return RegisteredModel(model, name, str(mv.version), mv.run_id, embedding, metrics)


def _params(model: BaseSuggester, extra: dict[str, Any]) -> dict[str, str]:
    from pipeline.project.suggest import jsonable

    out: dict[str, str] = {}
    for key, value in {**model.get_params(deep=True), **extra}.items():
        text = json.dumps(jsonable(value), ensure_ascii=False) if not isinstance(value, str) else value
        if len(text) > 200 and key in ("codes", "code_embeddings"):
            text = f"<{len(value)} items>" if isinstance(value, list | tuple) else text[:200] + "..."
        out[safe_key(key)] = text[:PARAM_MAX]
    return out


def pip_requirements() -> list[str]:
    """Exact versions of what unpickling a suggester needs (qualflow itself, numpy, scipy, sklearn)."""
    reqs = []
    for dist in ("qualflow", *REQUIREMENTS):
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            raise ConfigError(
                f"package {dist!r} is not installed; reinstall qualflow (`make install`)"
            ) from None
    return reqs


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    version: str
    experiment_id: str


def log_training_run(
    project: Project,
    *,
    model: BaseSuggester,
    suggester: str,
    embedding: str,
    codebook_version_id: int,
    codebook_hash: str,
    fingerprint: dict[str, Any],
    metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    artifacts: list[Path],
    X_example: npt.NDArray[Any],
    registered_model: str = DEFAULT_REGISTERED_MODEL,
) -> LoggedRun:
    """One MLflow run: parameters, data fingerprint, metrics, artifacts and the model, registered as a
    new version of ``registered_model``.

    ``X_example`` : ndarray of shape (n, dim), a few evaluation rows for the model signature.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    exp_id = ensure_experiment(project, project.config.mlflow_experiment)
    extra = {
        "suggester": suggester,
        "embedding": embedding,
        "codebook_version_id": codebook_version_id,
        "codebook_hash": codebook_hash,
    }
    with mlflow.start_run(experiment_id=exp_id, run_name=f"retrain-{suggester}") as run:
        mlflow.log_params(_params(model, extra))
        mlflow.set_tags(
            {
                "qualflow.kind": "retrain",
                "qualflow.project": project.config.name,
                "data.hash": str(fingerprint["data_hash"]),
            }
        )
        mlflow.log_params({f"data.{k}": str(v) for k, v in fingerprint.items()})
        mlflow.log_metrics(metrics)
        if champion_metrics:
            mlflow.log_metrics({f"champion.{k}": v for k, v in champion_metrics.items()})
        with tempfile.TemporaryDirectory() as tmp:
            fp = Path(tmp) / "training_data.json"
            fp.write_text(json.dumps(fingerprint, indent=2), encoding="utf-8")
            mlflow.log_artifact(str(fp))
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
        from models.base import side_inputs

        blank = [""] * len(X_example)
        side = side_inputs(
            model, texts=blank, X_prev=np.zeros_like(X_example), prev_texts=blank, prev2_texts=blank
        )
        signature = infer_signature(X_example, model.predict_proba(X_example, **side))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model,
            serialization_format="cloudpickle",
        )
        version = str(info.registered_model_version)
        return LoggedRun(run.info.run_id, version, exp_id)


def record_gate(
    project: Project, *, registered_model: str, version: str, run_id: str, tags: dict[str, str], promote: bool
) -> None:
    """Write the gate's decision as tags on the run and the model version; move ``champion`` when
    ``promote``."""
    client = _client(project)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
        client.set_model_version_tag(registered_model, version, key, value)
    if promote:
        client.set_registered_model_alias(registered_model, CHAMPION, version)


def log_agreement_run(
    project: Project,
    *,
    experiment: str,
    metrics: dict[str, float],
    files: dict[str, str],
    tags: dict[str, str],
) -> str:
    """An MLflow run in ``experiment`` with agreement ``metrics`` and the report ``files``
    (name -> text); returns the run id."""
    import mlflow

    exp_id = ensure_experiment(project, experiment)
    with mlflow.start_run(experiment_id=exp_id, run_name="agreement") as run:
        mlflow.set_tags({"qualflow.kind": "agreement", **tags})
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                p = Path(tmp) / name
                p.write_text(text, encoding="utf-8")
                mlflow.log_artifact(str(p))
        return str(run.info.run_id)


def champion_version(project: Project, registered_model: str = DEFAULT_REGISTERED_MODEL) -> str | None:
    """The version the ``champion`` alias points to, or ``None``."""
    from mlflow.exceptions import MlflowException

    client = _client(project)
    try:
        return str(client.get_model_version_by_alias(registered_model, CHAMPION).version)
    except MlflowException:
        return None


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics as one flat dict for tracking: scalars as they are, ``per_code`` as
    ``f1.<code>`` (names made safe for MLflow), NaN left out.

    >>> scalar_metrics({"macro_f1": 0.5, "per_code": {"a b": {"f1": 1.0}}, "kappa_vs_x": float("nan")})
    {'macro_f1': 0.5, 'f1.a b': 1.0}
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key == "per_code":
            for code, row in value.items():
                out[f"f1.{safe_key(code)}"] = float(row["f1"])
        elif isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            out[safe_key(key)] = float(value)
    return out


def safe_key(name: str) -> str:
    """A metric or parameter key MLflow accepts (letters, digits, ``_-./`` and space).

    >>> safe_key("model:qualflow-suggester@2")
    'model_qualflow-suggester_2'
    """
    return "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "_-./ ")) else "_" for ch in name)


def agreement_metrics(report: AgreementReport) -> dict[str, float]:
    """Pooled coefficients (``pooled.<coefficient>``) and pairwise Cohen's κ
    (``cohen.<a>.vs.<b>``) of an agreement report, for tracking run by run."""
    out = {f"pooled.{name}": float(e.value) for name, e in report.pooled.estimates.items()}
    for (a, b), k in report.pairwise.items():
        if k is not None and np.isfinite(k):
            out[f"cohen.{safe_key(a)}.vs.{safe_key(b)}"] = float(k)
    for row in report.rows:
        for name, e in row.estimates.items():
            out[f"code.{safe_key(row.code)}.{name}"] = float(e.value)
    return out
