"""The ``retrain_suggester`` flow: coders' decisions -> a challenger -> MLflow -> the promotion gate.

Each task is one call into :mod:`pipeline.project.retrain` or :mod:`flows.tracking`; only I/O tasks retry.
See docs/flows.md for the held-out split and the gate.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import tracking
from flows.process import make_embedder, open_project
from flows.retries import io_task
from models.sequence import describe as describe_decoding
from pipeline.embed.factory import fine_tuned_backend, fine_tuned_spec
from pipeline.gate import GateDecision, promotion_decision
from pipeline.project import retrain as retraining
from pipeline.project.core import Project
from pipeline.project.retrain import Evaluation, Selection, TrainingSet, fine_tune_hint, keep_fine_tuned
from pipeline.text import counted

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from pipeline.embed.base import Embedder


@dataclass
class RetrainReport:
    """What a ``retrain_suggester`` run did."""

    registered_model: str
    version: str
    run_id: str
    experiment_id: str
    tracking_uri: str
    decision: GateDecision | None  # None when nothing was trained (``unchanged``)
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    champion_before: str | None = None
    suggester: str = ""
    selection: Selection | None = None
    unchanged: bool = False  # nothing trained: ``version`` was trained from the same inputs
    decoding: str | None = None  # what fit decided about decoding codes along each source
    fine_tune: str | None = None  # whether the fine-tuned encoder was kept, and why (:func:`keep_fine_tuned`)
    hint: str | None = None  # a setting worth trying (:func:`fine_tune_hint`), printed last

    def lines(self) -> list[str]:
        if self.unchanged:
            return [
                f"nothing changed since {self.registered_model}@{self.version} (same training data, "
                "codebook, suggester, parameters and qualflow version): not retrained; "
                "`qualflow train --force-retrain` trains anyway"
            ]
        d = self.decision
        assert d is not None
        verdict = "PROMOTED to champion" if d.promote else "not promoted (champion kept)"
        out = [self.selection.line()] if self.selection is not None else []
        out += [
            f"trained {self.registered_model}@{self.version} on "
            f"{counted(self.data.get('n_train_segments'), 'segment')} of "
            f"{counted(self.data.get('n_sources', 0) - self.data.get('n_eval_sources', 0), 'source')}; "
            f"evaluated on {counted(self.data.get('n_eval_segments'), 'segment')} of "
            f"{counted(self.data.get('n_eval_sources'), 'held-out source')}",
            *([self.decoding] if self.decoding else []),
            *([self.fine_tune] if self.fine_tune else []),
            f"{d.metric}: challenger {d.challenger:.4f}, champion "
            + (
                ("not comparable" if self.champion_before else "none")
                if d.champion is None
                else f"{d.champion:.4f}"
            )
            + f" ({self.champion_before and f'{self.registered_model}@{self.champion_before}' or 'no champion'})",
            f"{verdict}: {d.reason}",
        ]
        if d.forced:
            out.append("the gate was overridden with --force")
        out.append(
            f"MLflow: run {self.run_id} in experiment {self.experiment_id} at {self.tracking_uri} "
            "(see it with `qualflow ui mlflow`)"
        )
        if self.hint:
            out.append(self.hint)
        return out


def inputs_hash(ts: TrainingSet, embedding: str, settings: dict[str, Any]) -> str:
    """What a training run is made from: the training data and split (``data_hash``), the codebook,
    the base embedding, every setting of the flow that changes the model or the gate's decision and
    the versions of qualflow and the libraries that fit it. A run with the same hash as the latest
    version's fits the same model and gets the same verdict."""
    import json

    from pipeline.domain import sha256_text
    from pipeline.project.suggest import code_versions, jsonable

    key = {
        "data": ts.fingerprint()["data_hash"],
        "codebook": ts.codebook_hash,
        "embedding": embedding,
        "versions": code_versions(),
        **{k: jsonable(v) for k, v in settings.items()},
    }
    return sha256_text(json.dumps(key, sort_keys=True, ensure_ascii=False))


@io_task("check-unchanged")
def check_unchanged(project: Project, registered_model: str, key: str) -> str | None:
    return tracking.unchanged_since(project, registered_model, key)


@io_task("load-training-set")
def load_training_set(project: Project, embedder: Embedder) -> TrainingSet:
    return retraining.load_training_set(project, embedder)


@task(name="fit-challenger", cache_policy=NO_CACHE)
def fit_challenger(
    ts: TrainingSet, embedder: Embedder, suggester: str, params: dict[str, Any]
) -> BaseSuggester:
    return retraining.fit_challenger(ts, embedder, suggester, params)


@task(name="select-suggester", cache_policy=NO_CACHE)
def select_suggester(
    ts: TrainingSet,
    embedder: Embedder,
    suggester: str,
    params: dict[str, Any],
    select: str,
    metric: str,
    k: int,
) -> Selection | None:
    return retraining.select_suggester(ts, embedder, suggester, params, select=select, metric=metric, k=k)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(model: BaseSuggester, ts: TrainingSet, k: int) -> Evaluation:
    return retraining.evaluate_on_heldout(model, ts, k)


@task(name="evaluate-champion", cache_policy=NO_CACHE)
def evaluate_champion(
    champion: tracking.RegisteredModel, ts: TrainingSet, embedder: Embedder, k: int, force: bool
) -> Evaluation | None:
    return retraining.evaluate_champion(champion.model, champion.embedding, ts, embedder, k, force=force)


def _champion_embedding(
    project: Project, champion: tracking.RegisteredModel, ts: TrainingSet, embedder: Embedder
) -> tuple[TrainingSet, Embedder]:
    """The training set embedded as the champion was (its own fine-tuned encoder, or the project's
    model when the challenger's differs), so each model is scored on its own vectors; same split."""
    if champion.embedding == embedder.fingerprint:
        return ts, embedder
    champ_embedder = make_embedder(project, champion.encoder)
    if champ_embedder.fingerprint == embedder.fingerprint:
        return ts, embedder
    return load_training_set(project, champ_embedder), champ_embedder


@task(name="fine-tune-encoder", cache_policy=NO_CACHE)
def fine_tune_encoder(project: Project, ts: TrainingSet, minutes: float) -> tuple[Path, dict[str, Any]]:
    """Fine-tune the project's sentence-transformer on the training sources' coded segments (never the
    held-out ones), within ``minutes``; the folder goes to ``.qualflow/encoders/run-<data hash>``."""
    from prefect import get_run_logger

    from pipeline.embed.factory import fine_tune_base_dir
    from pipeline.embed.finetune import fine_tune

    base_dir = fine_tune_base_dir(project.config.embedding.model, project.root)
    idx = ts.train_idx
    out = project.cache_dir / "encoders" / f"run-{ts.fingerprint()['data_hash'][:12]}"
    exclusive = bool(project.config.suggester.params.get("exclusive", False))
    try:
        result = fine_tune(
            base_dir,
            [ts.corpus.texts[i] for i in idx],
            ts.corpus.Y[idx],
            out,
            minutes=minutes,
            exclusive=exclusive,
        )
    except ValueError as exc:  # too little to learn from: one line, as `suggest --fine-tune` says it
        from pipeline.errors import InputError

        raise InputError(
            f"--fine-tune: {exc} ({len(idx)} segments in the training sources); code more segments, or "
            "train without --fine-tune (or set [suggester] fine_tune = false)"
        ) from None
    negatives = (
        ""
        if result.loss == "classify"
        else f" ({result.hard_negatives} with a rejected suggestion as negative)"
    )
    get_run_logger().info(
        "fine-tuned the encoder (%s loss) on %d %s%s in %.0f s%s; peak memory %.0f MB",
        result.loss,
        result.triplets,
        result.unit,
        negatives,
        result.seconds,
        " (stopped by the time budget)" if result.stopped_by_budget else "",
        result.peak_rss_mb,
    )
    from dataclasses import asdict

    return out, asdict(result)


@io_task("load-champion")
def load_champion(
    project: Project, registered_model: str, missing_ok: bool = False
) -> tracking.RegisteredModel | None:
    """The champion; with ``missing_ok`` (``--force``) a champion whose files are gone counts as none."""
    return tracking.load_alias(project, registered_model, missing_ok=missing_ok)


@task(name="gate", cache_policy=NO_CACHE)
def gate(
    challenger: Evaluation,
    champion: Evaluation | None,
    metric: str,
    margin: float,
    force: bool,
    label: str,
    incomparable: bool = False,
) -> GateDecision:
    return promotion_decision(
        challenger.metrics,
        None if champion is None else champion.metrics,
        metric=metric,
        margin=margin,
        force=force,
        champion_label=label,
        incomparable=incomparable,
    )


@io_task("write-artifacts")
def write_artifacts(out_dir: Path, ev: Evaluation, ts: TrainingSet) -> list[Path]:
    return retraining.write_evaluation_artifacts(out_dir, ev, ts.codes, ts.corpus.codebook)


@io_task("log-mlflow-run")
def log_run(
    project: Project,
    model: BaseSuggester,
    suggester: str,
    embedder: Embedder,
    ts: TrainingSet,
    ev: Evaluation,
    champion_ev: Evaluation | None,
    artifacts: list[Path],
    registered_model: str,
    encoder_dir: Path | None = None,
    fine_tune: dict[str, Any] | None = None,
    selection: Selection | None = None,
    inputs_hash: str | None = None,
) -> tracking.LoggedRun:
    return tracking.log_training_run(
        project,
        model=model,
        suggester=suggester,
        embedding=embedder.fingerprint,
        codebook_version_id=ts.corpus.codebook_version_id,
        codebook_hash=ts.codebook_hash,
        fingerprint=ts.fingerprint(),
        metrics=tracking.scalar_metrics(ev.metrics),
        champion_metrics=None if champion_ev is None else tracking.scalar_metrics(champion_ev.metrics),
        artifacts=artifacts,
        X_example=ts.X[ts.eval_idx[:5]],
        registered_model=registered_model,
        encoder_dir=encoder_dir,
        encoder_backend=fine_tuned_backend(project.config.embedding.model),
        fine_tune=fine_tune,
        selection_params=None if selection is None else selection.params(),
        selection_metrics=None if selection is None else selection.metrics(),
        inputs_hash=inputs_hash,
    )


@io_task("record-gate")
def record_gate(
    project: Project, registered_model: str, run: tracking.LoggedRun, decision: GateDecision
) -> None:
    tracking.record_gate(
        project,
        registered_model=registered_model,
        version=run.version,
        run_id=run.run_id,
        tags=decision.tags(),
        promote=decision.promote,
    )


@io_task("record-model-version")
def record_model_version(
    project: Project,
    model: BaseSuggester,
    registered_model: str,
    run: tracking.LoggedRun,
    embedder: Embedder,
    ts: TrainingSet,
    ev: Evaluation,
    promoted: bool = False,
) -> None:
    from pipeline.project.suggest import register_model_version

    with project.store.transaction() as session:
        register_model_version(
            session,
            name=registered_model,
            suggester=type(model).__name__,
            params=model.get_params(),
            embedding=embedder.fingerprint,
            codebook_version_id=ts.corpus.codebook_version_id,
            version=run.version,
            mlflow_run_id=run.run_id,
            # the gate's verdict rides with the metrics (the report's "promoted" column)
            metrics={**tracking.scalar_metrics(ev.metrics), "promoted": bool(promoted)},
        )


@flow(name="retrain_suggester", log_prints=False)
def retrain_suggester(
    project_dir: str,
    suggester: str = "auto",
    params: dict[str, Any] | None = None,
    select: str = "cv",
    promotion_metric: str = "macro_f1",
    promotion_margin: float = 0.0,
    force: bool = False,
    top_k: int = 3,
    registered_model: str = tracking.DEFAULT_REGISTERED_MODEL,
    fine_tune: bool = False,
    fine_tune_minutes: float = 10.0,
    force_retrain: bool = False,
) -> RetrainReport:
    """Train a challenger on the coders' decisions, log it to MLflow and promote it if it is better.

    Parameters
    ----------
    project_dir : the project folder
    suggester, params : ``[suggester] name`` and ``params`` of qualflow.toml
    select : ``[suggester] select``: for ``suggester="auto"``, ``"cv"`` chooses among
        :func:`models.auto_candidates` by grouped CV on the training sources, scored by
        ``promotion_metric`` (:func:`pipeline.project.retrain.select_suggester`), ``"rule"`` takes
        the rule's choice; the choice is logged as ``selection.*`` params and metrics
    promotion_metric, promotion_margin : the gate (``[flows]``): promote when the challenger's metric
        exceeds the champion's by more than the margin, on the same held-out sources
    force : promote whatever the gate says (recorded as ``gate.forced=true``); a champion whose files
        are gone is then not compared (a replacement for it)
    top_k : suggestions per segment, for ``hit_at_k``
    registered_model : MLflow registered model name
    fine_tune, fine_tune_minutes : ``[suggester]``: fine-tune the encoder on the training sources'
        coded segments first (within the budget); the encoder is logged inside the challenger's
        MLflow model, has its own embedding fingerprint, and goes through the same gate
    force_retrain : train even when the latest version was trained from the same inputs (the same
        training data, codebook, embedding, suggester, parameters and gate settings:
        :func:`inputs_hash`); without it (and without ``force``) such a run trains nothing and says so,
        so a nightly schedule does not register one identical version a night
    """
    project = open_project(project_dir)
    embedder = make_embedder(project)
    ts = load_training_set(project, embedder)
    settings = {
        "suggester": suggester, "params": params or {}, "select": select,
        "promotion_metric": promotion_metric, "promotion_margin": promotion_margin, "top_k": top_k,
        "fine_tune": fine_tune, "fine_tune_minutes": fine_tune_minutes if fine_tune else None,
    }  # fmt: skip
    key = inputs_hash(ts, embedder.fingerprint, settings)
    same = None if (force or force_retrain) else check_unchanged(project, registered_model, key)
    if same is not None:
        project.close()
        return RetrainReport(
            registered_model=registered_model,
            version=same,
            run_id="",
            experiment_id="",
            tracking_uri=tracking.tracking_uri(project),
            decision=None,
            data=ts.fingerprint(),
            unchanged=True,
        )
    encoder_dir: Path | None = None
    tuned: dict[str, Any] | None = None
    if fine_tune:
        encoder_dir, tuned = fine_tune_encoder(project, ts, fine_tune_minutes)
        base_ts, base_embedder = ts, embedder
        # the project's backend: an onnx project runs its fine-tuned encoder exported to ONNX int8 too
        embedder = make_embedder(project, fine_tuned_spec(project.config.embedding.model, encoder_dir))
        ts = load_training_set(project, embedder)
    selection = select_suggester(ts, embedder, suggester, params or {}, select, promotion_metric, top_k)
    chosen = suggester if selection is None else selection.chosen
    challenger = fit_challenger(ts, embedder, chosen, params or {})
    challenger_ev = evaluate(challenger, ts, top_k)
    fine_tune_line = None
    if tuned is not None:
        # the same suggester on the base encoder, the same held-out sources: is the fine-tune worth it?
        base_model = fit_challenger(base_ts, base_embedder, chosen, params or {})
        base_ev = evaluate(base_model, base_ts, top_k)
        scores = float(challenger_ev.metrics[promotion_metric]), float(base_ev.metrics[promotion_metric])
        kept, fine_tune_line = keep_fine_tuned(*scores, promotion_metric)
        tuned = {
            **tuned,
            "kept": kept,
            f"heldout_{promotion_metric}": scores[0],
            f"base_heldout_{promotion_metric}": scores[1],
        }
        if not kept:
            import shutil

            assert encoder_dir is not None
            shutil.rmtree(encoder_dir, ignore_errors=True)  # ~90 MB that nothing will read
            challenger, challenger_ev, ts, embedder, encoder_dir = (
                base_model,
                base_ev,
                base_ts,
                base_embedder,
                None,
            )
    champion = load_champion(project, registered_model, force)
    champion_ev = None
    if champion is not None:
        champ_ts, champ_embedder = (
            (base_ts, base_embedder)
            if fine_tune and champion.embedding == base_embedder.fingerprint
            else _champion_embedding(project, champion, ts, embedder)
        )
        champion_ev = evaluate_champion(champion, champ_ts, champ_embedder, top_k, force)
    label = f"{registered_model}@{champion.version}" if champion is not None else "no champion"
    incomparable = champion is not None and champion_ev is None
    decision = gate(
        challenger_ev, champion_ev, promotion_metric, promotion_margin, force, label, incomparable
    )
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = write_artifacts(Path(tmp), challenger_ev, ts)
        run = log_run(
            project,
            challenger,
            chosen,
            embedder,
            ts,
            challenger_ev,
            champion_ev,
            artifacts,
            registered_model,
            encoder_dir,
            tuned,
            selection,
            key,
        )
    record_gate(project, registered_model, run, decision)
    record_model_version(
        project, challenger, registered_model, run, embedder, ts, challenger_ev, decision.promote
    )
    project.close()
    data = ts.fingerprint()
    return RetrainReport(
        registered_model=registered_model,
        version=run.version,
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        tracking_uri=tracking.tracking_uri(project),
        decision=decision,
        metrics=tracking.scalar_metrics(challenger_ev.metrics),
        data=data,
        champion_before=None if champion is None else champion.version,
        suggester=chosen,
        selection=selection,
        decoding=describe_decoding(challenger),
        fine_tune=fine_tune_line,
        hint=fine_tune_hint(
            bool((params or {}).get("exclusive", False)), fine_tune, data["n_train_positives"]
        ),
    )
