"""MLflow at the edge: the only module of qualflow that imports mlflow.

Every function takes the project and sets the tracking and registry URI for that call (never at
import time). The tracking store is ``[mlflow_tracking_uri]`` of ``qualflow.toml`` (relative SQLite
paths inside the project); experiments this module creates keep their artifacts in
``<project>/mlruns``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
INPUTS_TAG = "qualflow.inputs_hash"  # a training run's inputs (flows.retrain.inputs_hash)
ENCODER_DIR = "encoder"  # the fine-tuned encoder's folder name inside the logged model (extra_files/encoder)
PARAM_MAX = 6000  # MLflow's limit on a parameter value is 6000 characters
REQUIREMENTS = ("numpy", "scipy", "scikit-learn")


def tracking_uri(project: Project) -> str:
    """The project's MLflow tracking URI (a relative ``sqlite:///`` path made absolute)."""
    return resolve_sqlite_url(project.config.mlflow_tracking_uri, project.root)


def artifact_root(project: Project) -> Path:
    """Where experiments created by qualflow keep their artifacts: ``<project>/mlruns``."""
    return project.root / "mlruns"


#: Where MLflow's SQL store keeps absolute artifact locations: (table, column).
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def relocate_store(uri: str, root: Path) -> list[str]:
    """Point a project's MLflow store at this project's ``mlruns/`` after the folder was moved or copied.

    MLflow records absolute artifact locations (``file:///old/place/mlruns/...``) in its store: after
    ``mv study study2`` every model in it pointed at a folder that no longer exists, and in a copy new
    runs wrote into the original's ``mlruns/``. For a SQLite store inside ``root`` whose experiments
    keep their artifacts in another folder's ``mlruns/`` while ``root/mlruns`` holds the same experiment
    folders, or the other folder is gone (a moved or copied project; not a store copied without its
    files while they still exist elsewhere), every location
    under that other ``mlruns/`` (experiments, runs, model versions, logged models) is rewritten to the
    same relative path under ``root/mlruns``. A store elsewhere (a server, a file outside the project)
    is left alone. Returns the prefixes rewritten (none when the store already belongs here).
    """
    import sqlite3
    from urllib.parse import unquote, urlparse

    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return []
    db = Path(uri.removeprefix(prefix))
    mlruns = (root / "mlruns").resolve()
    if not db.is_file() or not db.resolve().is_relative_to(root.resolve()) or not mlruns.is_dir():
        return []
    here = {f"{mlruns.as_uri()}/", f"{mlruns}/"}
    con = sqlite3.connect(str(db), timeout=30)
    try:
        try:
            locations = [row[0] for row in con.execute("SELECT artifact_location FROM experiments")]
        except sqlite3.Error:  # not an MLflow store (yet)
            return []
        stale: set[str] = set()
        for loc in locations:
            cut = (loc or "").rfind("/mlruns/")
            if cut > 0 and loc[: cut + len("/mlruns/")] not in here:
                # only when this project's mlruns/ holds that experiment's folder: a store copied
                # without its mlruns/ keeps pointing where its files are
                rel = loc[cut + len("/mlruns/") :].split("/", 1)[0]
                elsewhere = Path(unquote(urlparse(loc).path) if loc.startswith("file:") else loc)
                if rel and ((mlruns / rel).is_dir() or not elsewhere.exists()):
                    stale.add(loc[: cut + len("/mlruns/")])
        with con:
            for old in sorted(stale):
                new = f"{mlruns.as_uri()}/" if old.startswith("file:") else f"{mlruns}/"
                for table, column in LOCATION_COLUMNS:
                    try:
                        con.execute(
                            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                            f"WHERE substr({column}, 1, ?) = ?",
                            (new, len(old) + 1, len(old), old),
                        )
                    except sqlite3.OperationalError:  # a table an older MLflow schema does not have
                        continue
    finally:
        con.close()
    return sorted(stale)


def _client(project: Project) -> MlflowClient:
    import mlflow

    uri = tracking_uri(project)
    relocate_store(uri, project.root)
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


def check_model_files(client: MlflowClient, name: str, alias: str, mv: Any) -> None:
    """A :class:`ConfigError` naming the model and the folder when a local model version's files are
    gone (the project's ``mlruns/`` deleted, or only ``mlflow.db`` copied): one line, not MLflow's
    ``No such artifact: ''`` from deep inside a flow."""
    from urllib.parse import unquote, urlparse

    location = str(mv.source or "")
    model_id = mv.model_id or location.removeprefix("models:/")
    if location.startswith("models:/") and model_id.startswith("m-") and "/" not in model_id:
        # MLflow 3: the version is a logged model (``models:/m-<id>``), whose files are its location
        location = str(client.get_logged_model(model_id).artifact_location or "")
    if location.startswith("file:"):
        path = Path(unquote(urlparse(location).path))
    elif location.startswith("/"):
        path = Path(location)
    else:  # a server or a models:/ URI: MLflow reports its own errors
        return
    if not (path / "MLmodel").is_file():
        raise ConfigError(
            f"the {alias} model {name} version {mv.version} has no files at {path}: put the project's "
            "mlruns/ folder back (it holds every trained model), or train a new champion with "
            "`qualflow train --force`"
        )


def _champion(project: Project, name: str) -> tuple[Any, Any] | None:
    """``(client, model version)`` of the champion, or ``None`` when the store or the alias does not
    exist yet (a local SQLite store is not created here)."""
    uri = tracking_uri(project)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    from mlflow.exceptions import MlflowException

    client = _client(project)
    try:
        return client, client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def check_champion_files(project: Project, name: str = DEFAULT_REGISTERED_MODEL) -> None:
    """What :func:`load_alias` would stop on, checked before Prefect starts (``qualflow process`` and
    ``train``): the store moved along with the project, and the champion's files present."""
    found = _champion(project, name)
    if found is not None:
        check_model_files(found[0], name, CHAMPION, found[1])


def check_champion_embedding(project: Project, name: str = DEFAULT_REGISTERED_MODEL) -> None:
    """What ``qualflow train`` without ``--force`` would stop on once the flow has loaded and scored
    everything (:func:`pipeline.project.retrain.evaluate_champion`), checked before Prefect starts: a
    champion trained on another embedding model than the project's (``[embedding] model`` changed)
    cannot be compared with a new model. A champion with its own fine-tuned encoder is re-embedded
    with it by the flow, so it passes; so does a store with no champion yet."""
    found = _champion(project, name)
    if found is None or not found[1].run_id:
        return
    from mlflow.exceptions import MlflowException

    try:
        params = dict(found[0].get_run(found[1].run_id).data.params)
    except MlflowException:  # its run deleted: the flow says what it makes of that
        return
    if params.get("encoder") == "fine-tuned":
        return
    from pipeline.project.embedding import project_embedder
    from pipeline.project.retrain import check_comparable

    check_comparable(params.get("embedding", ""), project_embedder(project, progress=False).fingerprint)


@dataclass(frozen=True)
class RegisteredModel:
    """A model version loaded from the registry, with what the run recorded about it."""

    model: BaseSuggester
    name: str
    version: str
    run_id: str | None
    embedding: str
    metrics: dict[str, float]
    encoder: str | None = (
        None  # "<backend>:<local folder>" of a fine-tuned encoder (onnx or sentence-transformers)
    )


def load_alias(
    project: Project, name: str = DEFAULT_REGISTERED_MODEL, alias: str = CHAMPION, *, missing_ok: bool = False
) -> RegisteredModel | None:
    """Load ``models:/<name>@<alias>`` (``None`` when the model or the alias does not exist yet, or,
    with ``missing_ok``, when its files are gone; else that is a :class:`ConfigError`).

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
    try:
        check_model_files(client, name, alias, mv)
    except ConfigError:
        if missing_ok:
            return None
        raise
    embedding, metrics, params = "", {}, {}
    if mv.run_id:
        run = client.get_run(mv.run_id)
        params = dict(run.data.params)
        embedding = params.get("embedding", "")
        metrics = dict(run.data.metrics)
    encoder = None
    if params.get("encoder") == "fine-tuned":
        # one download per model version, kept in the project: the encoder folder and the suggester
        local = project.cache_dir / "encoders" / f"{safe_key(name)}-v{mv.version}"
        if not (local / "MLmodel").is_file():
            import mlflow.artifacts

            tmp = local.with_name(local.name + ".tmp")
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(tmp)
            )
            tmp.replace(local)
        model = mlflow.sklearn.load_model(str(local))
        # the backend it was trained and scored with (runs before the ONNX option logged none: torch)
        backend = params.get("encoder.backend", "sentence-transformers")
        encoder = f"{backend}:{(local / 'extra_files' / ENCODER_DIR).resolve()}"
    else:
        model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    return RegisteredModel(model, name, str(mv.version), mv.run_id, embedding, metrics, encoder)


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
    encoder_dir: Path | None = None,
    encoder_backend: str = "sentence-transformers",
    fine_tune: dict[str, Any] | None = None,
    selection_params: dict[str, str] | None = None,
    selection_metrics: dict[str, float] | None = None,
    inputs_hash: str | None = None,
) -> LoggedRun:
    """One MLflow run: parameters, data fingerprint, metrics, artifacts and the model, registered as a
    new version of ``registered_model``.

    ``X_example`` : ndarray of shape (n, dim), a few evaluation rows for the model signature.
    ``encoder_dir`` : a fine-tuned sentence-transformers folder, saved inside the same MLflow model
    (``extra_files/encoder``) so the suggester and the encoder it was trained on are one version;
    ``encoder_backend`` : what runs that encoder (``onnx`` or ``sentence-transformers``), logged as
    ``encoder.backend`` so :func:`load_alias` gives back the same embedder;
    ``fine_tune`` : what the fine-tuning did (logged as ``finetune.*`` params and metrics);
    ``selection_params``, ``selection_metrics`` : how ``suggester`` was chosen for ``auto``
    (``selection.*``, :class:`pipeline.project.retrain.Selection`);
    ``inputs_hash`` : what the run was trained from (tag ``qualflow.inputs_hash``, see
    :func:`unchanged_since`).
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
        "encoder": "fine-tuned" if encoder_dir is not None else "base",
    }
    if encoder_dir is not None:
        extra["encoder.backend"] = encoder_backend
    import shutil

    tmp_encoder = tempfile.TemporaryDirectory()
    run_name = f"retrain-{suggester}" + ("-finetuned" if encoder_dir is not None else "")
    with tmp_encoder, mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        mlflow.log_params(_params(model, extra))
        mlflow.set_tags(
            {
                "qualflow.kind": "retrain",
                "qualflow.project": project.config.name,
                "data.hash": str(fingerprint["data_hash"]),
                **({INPUTS_TAG: inputs_hash} if inputs_hash else {}),
            }
        )
        mlflow.log_params({f"data.{k}": str(v) for k, v in fingerprint.items()})
        mlflow.log_metrics(metrics)
        if fine_tune:
            numeric = {
                k: float(v)
                for k, v in fine_tune.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            mlflow.log_metrics({f"finetune.{k}": v for k, v in numeric.items() if np.isfinite(v)})
            mlflow.log_params(
                {f"finetune.{k}": str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in fine_tune.items() if k not in numeric}
            )  # fmt: skip
        from models.sequence import record

        decoding_params, decoding_metrics = record(model)  # the codes-along-a-source choice fit made
        if decoding_params:
            mlflow.log_params(decoding_params)
            mlflow.log_metrics(decoding_metrics)
        if selection_params:
            mlflow.log_params(selection_params)
        if selection_metrics:
            mlflow.log_metrics(selection_metrics)
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
            model,
            texts=blank,
            X_prev=np.zeros_like(X_example),
            prev_texts=blank,
            prev2_texts=blank,
            X_window=X_example,
        )
        signature = infer_signature(X_example, model.predict_proba(X_example, **side))
        extra_files = None
        if encoder_dir is not None:
            staged = Path(tmp_encoder.name) / ENCODER_DIR
            shutil.copytree(encoder_dir, staged)
            extra_files = [str(staged)]
        with without_pickle_notice():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                extra_files=extra_files,
                signature=signature,
                pip_requirements=pip_requirements(),
                registered_model_name=registered_model,
                serialization_format="cloudpickle",
            )
        version = str(info.registered_model_version)
        return LoggedRun(run.info.run_id, version, exp_id)


#: How the warning mlflow.sklearn logs on every pickle/cloudpickle save begins (MLflow 3).
PICKLE_NOTICE = "Saving scikit-learn models in the pickle or cloudpickle format"


class _DropPickleNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(PICKLE_NOTICE)


@contextmanager
def without_pickle_notice() -> Iterator[None]:
    """Drop mlflow.sklearn's warning that cloudpickle can run code when loaded (every other record of
    that logger passes). qualflow's suggesters are its own classes (``models/``), which skops, the
    format the warning recommends, loads only given a list of trusted types kept in step with them,
    and the champions already registered are cloudpickle; the models are written and read by qualflow
    in the project's own MLflow store, so the warning, printed on every `qualflow train`, told the
    user nothing they could act on."""
    logger = logging.getLogger("mlflow.sklearn")
    quiet = _DropPickleNotice()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


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


def unchanged_since(project: Project, registered_model: str, inputs_hash: str) -> str | None:
    """The latest version of ``registered_model`` when its run was trained from exactly ``inputs_hash``
    and the gate decided on it (training again would fit the same model and the gate would decide the
    same), else ``None``."""
    uri = tracking_uri(project)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    from mlflow.exceptions import MlflowException

    client = _client(project)
    try:
        versions = client.search_model_versions(f"name = '{registered_model}'")
    except MlflowException:
        return None
    if not versions:
        return None
    latest = max(versions, key=lambda mv: int(mv.version))
    if not latest.run_id:
        return None
    tags = client.get_run(latest.run_id).data.tags
    # a version whose run died before the gate recorded its decision was never judged: train again
    gated = "gate.decision" in tags
    return str(latest.version) if gated and tags.get(INPUTS_TAG) == inputs_hash else None


@dataclass(frozen=True)
class VersionRow:
    """One registered model version, as ``qualflow models versions`` lists it."""

    version: str
    suggester: str
    created: str  # local time, minutes
    metric: float | None
    data_hash: str
    champion: bool
    run_id: str
    decision: str  # the gate's: promoted / kept-champion / ""


def model_versions(
    project: Project, registered_model: str = DEFAULT_REGISTERED_MODEL, metric: str = "macro_f1"
) -> list[VersionRow]:
    """Every registered version of ``registered_model``, newest first, with what its run recorded."""
    uri = tracking_uri(project)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return []
    from datetime import datetime

    from mlflow.exceptions import MlflowException

    client = _client(project)
    try:
        versions = client.search_model_versions(f"name = '{registered_model}'")
    except MlflowException:
        return []
    try:  # search_model_versions leaves the versions' aliases out: the registered model has them
        aliases = client.get_registered_model(registered_model).aliases or {}
    except MlflowException:
        aliases = {}
    champion = str(aliases.get(CHAMPION, ""))
    out = []
    for mv in sorted(versions, key=lambda v: -int(v.version)):
        params: dict[str, str] = {}
        metrics: dict[str, float] = {}
        tags: dict[str, str] = {}
        if mv.run_id:
            try:
                run = client.get_run(mv.run_id)
                params, metrics, tags = dict(run.data.params), dict(run.data.metrics), dict(run.data.tags)
            except MlflowException:
                pass
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000).strftime("%Y-%m-%d %H:%M")
        out.append(
            VersionRow(
                version=str(mv.version),
                suggester=params.get("suggester", ""),
                created=created,
                metric=metrics.get(metric),
                data_hash=tags.get("data.hash", ""),
                champion=str(mv.version) == champion,
                run_id=str(mv.run_id or ""),
                decision=(mv.tags or {}).get("gate.decision", ""),
            )
        )
    return out


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


def log_round_run(
    project: Project,
    *,
    experiment: str,
    run_name: str,
    params: dict[str, str],
    metrics: dict[str, float],
    files: dict[str, str],
    tags: dict[str, str],
) -> str:
    """An MLflow run for one closed coding round: ``params`` (codebook version, coders, units...),
    ``metrics`` (every coefficient with its interval) and ``files`` (name -> text); returns the run id."""
    import mlflow

    exp_id = ensure_experiment(project, experiment)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        mlflow.set_tags({"qualflow.kind": "round", "qualflow.project": project.config.name, **tags})
        mlflow.log_params({safe_key(k): v[:PARAM_MAX] for k, v in params.items()})
        mlflow.log_metrics({safe_key(k): v for k, v in metrics.items() if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                p = Path(tmp) / name
                p.write_text(text, encoding="utf-8")
                mlflow.log_artifact(str(p))
        return str(run.info.run_id)


def round_metrics(results: dict[str, Any]) -> dict[str, float]:
    """A closed round's results as flat MLflow metrics: ``<coefficient>`` with ``.ci_low`` /
    ``.ci_high``, and the same under ``decisions.``, ``with_model.`` and ``consensus.<coder>.``.

    >>> round_metrics({"units": 3, "coefficients": {"cohen": {"value": .5, "ci_low": .1, "ci_high": .8}}})
    {'units': 3.0, 'cohen': 0.5, 'cohen.ci_low': 0.1, 'cohen.ci_high': 0.8}
    """
    out: dict[str, float] = {}
    if "units" in results:
        out["units"] = float(results["units"])

    def add(prefix: str, coefs: dict[str, Any]) -> None:
        for name, e in coefs.items():
            out[f"{prefix}{name}"] = float(e["value"])
            for bound in ("ci_low", "ci_high"):
                if e.get(bound) is not None:
                    out[f"{prefix}{name}.{bound}"] = float(e[bound])

    add("", results.get("coefficients", {}))
    add("with_model.", results.get("with_model", {}))
    if results.get("decisions"):
        out["decisions.units"] = float(results["decisions"]["units"])
        add("decisions.", results["decisions"]["coefficients"])
    for coder, coefs in (results.get("consensus") or {}).items():
        add(f"consensus.{safe_key(coder)}.", coefs)
    for p in results.get("pairwise", []):
        out[f"cohen.{safe_key(p['a'])}.vs.{safe_key(p['b'])}"] = float(p["kappa"])
    return out
