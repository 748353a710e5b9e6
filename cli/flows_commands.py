"""What the ``qualflow`` CLI calls for ``process``, ``train``, ``serve`` and ``ui mlflow``.

Each function takes the project folder and plain arguments, reads ``qualflow.toml``, passes its
values to the flows as parameters, and imports prefect and mlflow only when called. Before prefect
is imported, ``PREFECT_HOME`` is set to ``<project>/.qualflow/prefect`` unless the user set it, so
the state of the temporary (ephemeral) Prefect server stays with the project.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import DEFAULT_REGISTERED_MODEL, load_config
from pipeline.errors import ConfigError, QualflowError

if TYPE_CHECKING:
    from flows.agreement import AgreementRun
    from flows.retrain import RetrainReport
    from pipeline.project.core import Project
    from pipeline.project.process import ProcessReport

MLFLOW_UI_PORT = 5000


def prefect_home(project_dir: Path) -> Path:
    return project_dir.resolve() / ".qualflow" / "prefect"


class UserErrorWithoutTraceback(logging.Filter):
    """Prefect logs a failed task's or flow's exception with its traceback. A user error
    (:class:`~pipeline.errors.QualflowError`: one line saying what is wrong and how to fix it, which the
    command prints at the end) needs none: its log records keep the message and lose the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], QualflowError):
            record.exc_info = None
            record.exc_text = None
        return True


#: The loggers Prefect reports a failed run on (run loggers are adapters over the first two).
PREFECT_RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs", "prefect.task_engine", "prefect.flow_engine")


def quiet_user_error_tracebacks() -> None:
    """Install :class:`UserErrorWithoutTraceback` on Prefect's run loggers (once)."""
    for name in PREFECT_RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UserErrorWithoutTraceback) for f in logger.filters):
            logger.addFilter(UserErrorWithoutTraceback())


def prepare_environment(project_dir: Path) -> None:
    """Telemetry off; ``PREFECT_HOME`` inside the project unless set; a user error that fails a flow
    logged without its traceback. Call before importing prefect."""
    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    quiet_user_error_tracebacks()
    if "PREFECT_HOME" not in os.environ:
        home = prefect_home(project_dir)
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)


@contextmanager
def _opened(project_dir: Path) -> Iterator[Project]:
    """The project, open for a pre-flight check: the flows' own first step, run before Prefect's
    temporary server starts (seconds), so a user error is one line at once and nothing is written."""
    from pipeline.project.core import Project

    project = Project.open(project_dir.resolve())
    try:
        yield project
    finally:
        project.close()


def run_process(
    project_dir: Path, paths: Sequence[Path] | None = None, registered_model: str = DEFAULT_REGISTERED_MODEL
) -> ProcessReport:
    """``qualflow process [PATHS...]``: run ``process_interviews`` once (inbox by default); with
    ``[flows] task_runner = "dask"`` its parsing and embedding run on Dask (see flows/runners.py)."""
    cfg = load_config(project_dir)
    with _opened(project_dir) as project:  # a bad path or no codebook: one line, before Prefect starts
        from pipeline.project.process import check_ready

        check_ready(project, paths)
        from flows.tracking import check_champion_files

        check_champion_files(project, registered_model)  # its files gone: one line, not a traceback
    prepare_environment(project_dir)
    from flows.process import process_interviews

    return process_interviews(
        str(project_dir.resolve()),
        paths=[str(p.resolve()) for p in paths] if paths else None,
        top_k=cfg.suggester.top_k,
        registered_model=registered_model,
    )


def run_train(
    project_dir: Path,
    force: bool = False,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    fine_tune: bool | None = None,
    force_retrain: bool = False,
) -> RetrainReport:
    """``qualflow train [--force] [--fine-tune] [--force-retrain]``: run ``retrain_suggester`` once;
    ``force`` overrides the gate; ``fine_tune`` (default ``[suggester] fine_tune``) fine-tunes the
    encoder first; ``force_retrain`` trains even when nothing changed since the latest version."""
    from flows.serve import flow_parameters

    cfg = load_config(project_dir)
    with _opened(project_dir) as project:  # too few coded sources: one line, before Prefect starts
        from pipeline.project.retrain import check_trainable

        check_trainable(project)
        if not force:  # --force trains a replacement for a champion whose files are gone
            from flows.tracking import check_champion_embedding, check_champion_files

            check_champion_files(project, registered_model)
            check_champion_embedding(project, registered_model)  # not 20 s into the flow
    prepare_environment(project_dir)
    from flows.retrain import retrain_suggester

    params = flow_parameters(project_dir.resolve(), cfg, registered_model)["retrain_suggester"]
    if fine_tune is not None:
        params["fine_tune"] = fine_tune
    return retrain_suggester(**params, force=force, force_retrain=force_retrain)


def run_agreement(
    project_dir: Path, registered_model: str = DEFAULT_REGISTERED_MODEL, n_boot: int = 1000, seed: int = 0
) -> AgreementRun:
    """``qualflow agreement --log`` (suggested): run ``agreement_report`` once and log it to MLflow, with
    the same resamples and seed as ``qualflow agreement`` (the same intervals for the same codings)."""
    load_config(project_dir)
    with _opened(project_dir) as project:  # too few coded sources: one line, before Prefect starts
        from pipeline.errors import InputError
        from pipeline.project.retrain import check_trainable

        try:
            check_trainable(project)
        except InputError as e:  # the panel scores the champion on the labelled sources, as train does
            raise InputError(
                f"agreement --log scores the champion as `qualflow train` does, and {e}"
            ) from None
    prepare_environment(project_dir)
    from flows.agreement import agreement_report

    return agreement_report(
        str(project_dir.resolve()), registered_model=registered_model, n_boot=n_boot, seed=seed
    )


def run_serve(
    project_dir: Path,
    start_server: bool = False,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    pool: str | None = None,
) -> None:
    """``qualflow serve [--start-server] [--pool NAME]``: register the schedules and run flows as
    they fall due.

    Blocks until Ctrl-C. With ``start_server`` a Prefect server is started on 127.0.0.1 (state in
    ``<project>/.qualflow/prefect``; UI at the printed URL) and stopped on exit; without it
    ``PREFECT_API_URL`` must name a running server. With a work pool (``pool``, else
    ``[flows] work_pool``) the deployments are registered in it and the command returns: workers
    (``prefect worker start --pool NAME``) run them.
    """
    cfg = load_config(project_dir)
    pool = cfg.flows.work_pool if pool is None else pool
    if pool and start_server:
        raise ConfigError(
            "--start-server stops its Prefect server when `qualflow serve` exits, and with a work pool it "
            "exits at once: start the server with `prefect server start` and set PREFECT_API_URL instead"
        )
    prepare_environment(project_dir)
    if pool:
        from flows.serve import deploy_to_pool, worker_command

        names = deploy_to_pool(project_dir.resolve(), cfg, registered_model, pool)
        print(f"registered in the Prefect work pool {pool!r}: {', '.join(names)}", flush=True)
        print(f"start a worker on each machine that processes interviews:\n  {worker_command(pool)}")
        return
    from flows.serve import local_prefect_server, serve

    with ExitStack() as stack:
        if start_server:
            url = stack.enter_context(local_prefect_server(Path(os.environ["PREFECT_HOME"])))
            os.environ["PREFECT_API_URL"] = url
            print(
                f"Prefect server on {url.removesuffix('/api')} (stopped when this command exits)", flush=True
            )
        serve(project_dir.resolve(), cfg, registered_model)


def mlflow_ui_command(project_dir: Path, port: int = MLFLOW_UI_PORT) -> list[str]:
    """The ``mlflow ui`` command for the project's tracking store, on 127.0.0.1 with one worker."""
    from flows.tracking import relocate_store
    from pipeline.config import resolve_sqlite_url

    cfg = load_config(project_dir)
    root = project_dir.resolve()
    uri = resolve_sqlite_url(cfg.mlflow_tracking_uri, root)
    relocate_store(uri, root)  # a moved or copied project: its runs' files are in this mlruns/
    return [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", uri,
        "--default-artifact-root", (root / "mlruns").as_uri(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


def run_mlflow_ui(project_dir: Path, port: int = MLFLOW_UI_PORT) -> int:
    """``qualflow ui mlflow``: start the MLflow UI on http://127.0.0.1:PORT (blocks; returns its exit code)."""
    cmd = mlflow_ui_command(project_dir, port)
    prepare_environment(project_dir)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.run(cmd, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 0
    except FileNotFoundError:
        raise ConfigError("mlflow is not installed in this environment; run `make install`") from None


def model_versions_table(project_dir: Path, registered_model: str = DEFAULT_REGISTERED_MODEL) -> list[str]:
    """``qualflow models versions``: one line per registered version, newest first (``*`` marks the
    champion), with the gate's metric, the training data hash and the MLflow run."""
    cfg = load_config(project_dir)
    metric = cfg.flows.promotion_metric
    with _opened(project_dir) as project:
        from flows.tracking import model_versions

        rows = model_versions(project, registered_model, metric)
    if not rows:
        return [f"no trained versions of {registered_model} yet: `qualflow train` trains the first"]
    head = ("", "version", "suggester", "created", metric, "data.hash", "gate", "run")
    table = [
        (
            "*" if r.champion else "",
            r.version,
            r.suggester or "-",
            r.created,
            "-" if r.metric is None else f"{r.metric:.4f}",
            r.data_hash[:12] or "-",
            r.decision or "-",
            r.run_id or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (head, *table)) for i in range(len(head))]
    lines = [f"{registered_model} (* = champion)"]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (head, *table)
    ]
    return lines


def run_round_close(
    project_dir: Path,
    round_name: str | None = None,
    *,
    with_model: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
) -> Any:
    """``qualflow round close``: run the ``round_close`` flow once (agreement of the round to MLflow)."""
    load_config(project_dir)
    with _opened(project_dir) as project:  # no such round, no assignments: one line, before Prefect
        from pipeline.project.rounds import round_data

        round_data(project, round_name)
    prepare_environment(project_dir)
    from flows.rounds import round_close

    return round_close(
        str(project_dir.resolve()),
        round_name=round_name,
        with_model=with_model,
        n_boot=n_boot,
        seed=seed,
        registered_model=registered_model,
    )
