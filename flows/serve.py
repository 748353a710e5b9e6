"""Scheduling: deployments of the flows, served against a Prefect server, and a local server to use.

``qualflow serve`` registers ``process_interviews`` every ``[flows] process_every_minutes`` and
``retrain_suggester`` on ``[flows] retrain_cron`` and runs them as they fall due (a Prefect "serve"
process). Schedules need a running server: ``--start-server`` starts one on 127.0.0.1 (state in the
project's ``.qualflow/prefect``) and stops it on exit; otherwise ``PREFECT_API_URL`` must point to one.

``qualflow serve --pool NAME`` (or ``[flows] work_pool``) registers the same two deployments in a
Prefect work pool of type ``process`` instead (created if missing) and exits; ``prefect worker start
--pool NAME`` on one or more machines runs them. Their entrypoints are module paths
(``flows.process.process_interviews``): each worker imports the flows from its own qualflow install,
so no Docker image and no shared code folder are needed, only the project folder at the same path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipeline.config import FlowsConfig, ProjectConfig
from pipeline.errors import ConfigError

SERVER_HOST = "127.0.0.1"


def check_retrain_cron(config: ProjectConfig, where: str) -> None:
    """``[flows] retrain_cron`` is a schedule Prefect accepts: the ``CronSchedule`` the retrain deployment
    is built with, so a bad one is one line when the CLI opens the project rather than a Prefect error
    when `qualflow serve` runs. (``pipeline.config`` checks the rest of the file but must not import
    Prefect.) Prefect is imported only for a value other than the default.

    >>> from pipeline.config import FlowsConfig
    >>> check_retrain_cron(ProjectConfig(flows=FlowsConfig(retrain_cron="0 25 * * *")), "qualflow.toml")
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: qualflow.toml [flows]: retrain_cron = '0 25 * * *' must be a cron schedule (minute hour day-of-month month day-of-week), e.g. "0 2 * * *" (the default: 2:00 every night)
    """
    cron = config.flows.retrain_cron
    if cron == FlowsConfig.retrain_cron:
        return
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:  # pydantic's ValidationError
        raise ConfigError(
            f"{where} [flows]: retrain_cron = {cron!r} must be a cron schedule (minute hour day-of-month "
            'month day-of-week), e.g. "0 2 * * *" (the default: 2:00 every night)'
        ) from None


def flow_parameters(
    project_dir: Path, config: ProjectConfig, registered_model: str
) -> dict[str, dict[str, Any]]:
    """The parameters each flow gets from ``qualflow.toml`` (what the deployments and the CLI pass)."""
    return {
        "process_interviews": {
            "project_dir": str(project_dir),
            "top_k": config.suggester.top_k,
            "registered_model": registered_model,
        },
        "retrain_suggester": {
            "project_dir": str(project_dir),
            "suggester": config.suggester.name,
            "params": dict(config.suggester.params),
            "select": config.suggester.select,
            "promotion_metric": config.flows.promotion_metric,
            "promotion_margin": config.flows.promotion_margin,
            "top_k": config.suggester.top_k,
            "registered_model": registered_model,
            "fine_tune": config.suggester.fine_tune,
            "fine_tune_minutes": config.suggester.fine_tune_minutes,
        },
    }


def build_deployments(
    project_dir: Path, config: ProjectConfig, registered_model: str, *, for_pool: bool = False
) -> list[Any]:
    """``RunnerDeployment`` objects: processing every N minutes, retraining on the cron schedule.

    ``for_pool``: entrypoints as module paths, which a work pool's worker imports (see the module doc).
    """
    from prefect.deployments.runner import EntrypointType

    from flows.process import process_interviews
    from flows.retrain import retrain_suggester

    if config.flows.process_every_minutes < 1:
        raise ConfigError("[flows] process_every_minutes must be at least 1")
    check_retrain_cron(config, "qualflow.toml")
    params = flow_parameters(project_dir, config, registered_model)
    tag = f"qualflow:{config.name}"
    entry = EntrypointType.MODULE_PATH if for_pool else EntrypointType.FILE_PATH
    return [
        process_interviews.to_deployment(
            name=f"{config.name}-process",
            interval=timedelta(minutes=config.flows.process_every_minutes),
            parameters=params["process_interviews"],
            tags=[tag],
            entrypoint_type=entry,
        ),
        retrain_suggester.to_deployment(
            name=f"{config.name}-retrain",
            cron=config.flows.retrain_cron,
            parameters=params["retrain_suggester"],
            tags=[tag],
            entrypoint_type=entry,
        ),
    ]


def free_port(host: str = SERVER_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_command(port: int) -> list[str]:
    """The command that starts a local Prefect server on 127.0.0.1 (analytics off)."""
    exe = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    return [exe, "server", "start", "--host", SERVER_HOST, "--port", str(port), "--analytics-off"]


@contextmanager
def local_prefect_server(
    prefect_home: Path, port: int | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1, yield its API URL, stop it on exit.

    Its state (SQLite) lives in ``prefect_home``; its output goes to ``prefect_home/server.log``.
    """
    port = port or free_port()
    prefect_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    log = (prefect_home / "server.log").open("ab")
    # its own session: Ctrl-C reaches qualflow only, which stops the server after the runner has stopped
    proc = subprocess.Popen(
        server_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://{SERVER_HOST}:{port}/api"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise ConfigError(
                    f"the Prefect server exited (code {proc.returncode}); see {prefect_home / 'server.log'}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # loopback only
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ConfigError(f"the Prefect server did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        _drain_api_logs()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _drain_api_logs() -> None:
    """Send the logs Prefect still holds to the server before it stops (else they fail noisily)."""
    handlers = sys.modules.get("prefect.logging.handlers")
    if handlers is not None:
        with contextlib.suppress(Exception):
            handlers.APILogWorker.drain_all(timeout=5)


def serve(project_dir: Path, config: ProjectConfig, registered_model: str) -> None:
    """Register the deployments and run them as they fall due (blocks until interrupted).

    ``PREFECT_API_URL`` must be set (by the caller, or by :func:`local_prefect_server`).
    """
    _require_api_url()
    from prefect import serve as prefect_serve

    prefect_serve(*build_deployments(project_dir, config, registered_model))


def _require_api_url() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "schedules need a running Prefect server: use `qualflow serve --start-server` for a local one, "
            "or set PREFECT_API_URL to your team's server (e.g. http://127.0.0.1:4200/api)"
        )


def ensure_process_pool(name: str) -> bool:
    """Create the work pool ``name`` (type ``process``) unless it exists; ``True`` when created.

    Raises
    ------
    ConfigError
        A pool of that name exists with another type (its workers would not run our deployments).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template()
                )
            )
            return True
    if pool.type != "process":
        raise ConfigError(
            f"the Prefect work pool {name!r} is of type {pool.type!r}; qualflow's deployments need a "
            "'process' pool: choose another name with --pool (or [flows] work_pool)"
        )
    return False


def deploy_to_pool(project_dir: Path, config: ProjectConfig, registered_model: str, pool: str) -> list[str]:
    """Register the deployments in the work pool ``pool`` (created if missing); their names.

    ``PREFECT_API_URL`` must name the team's server. Nothing runs here: ``prefect worker start
    --pool POOL`` does.
    """
    _require_api_url()
    if not pool.strip():
        raise ConfigError("--pool needs a work pool name, e.g. --pool qualflow")
    from prefect import deploy

    deployments = build_deployments(project_dir, config, registered_model, for_pool=True)
    ensure_process_pool(pool)
    deploy(
        *deployments,
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    return [f"{d.flow_name}/{d.name}" for d in deployments]


def worker_command(pool: str) -> str:
    """The command that runs the deployments of ``pool`` (printed by ``qualflow serve --pool``)."""
    import shlex

    return f"prefect worker start --pool {shlex.quote(pool)}"
