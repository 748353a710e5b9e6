"""Scheduling: deployments of the flows, served against a Prefect server, and a local server to use.

``qualflow serve`` registers ``process_interviews`` every ``[flows] process_every_minutes`` and
``retrain_suggester`` on ``[flows] retrain_cron`` and runs them as they fall due (a Prefect "serve"
process). Schedules need a running server: ``--start-server`` starts one on 127.0.0.1 (state in the
project's ``.qualflow/prefect``) and stops it on exit; otherwise ``PREFECT_API_URL`` must point to one.
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

from pipeline.config import ProjectConfig
from pipeline.errors import ConfigError

SERVER_HOST = "127.0.0.1"


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
            "promotion_metric": config.flows.promotion_metric,
            "promotion_margin": config.flows.promotion_margin,
            "top_k": config.suggester.top_k,
            "registered_model": registered_model,
            "fine_tune": config.suggester.fine_tune,
            "fine_tune_minutes": config.suggester.fine_tune_minutes,
        },
    }


def build_deployments(project_dir: Path, config: ProjectConfig, registered_model: str) -> list[Any]:
    """``RunnerDeployment`` objects: processing every N minutes, retraining on the cron schedule."""
    from flows.process import process_interviews
    from flows.retrain import retrain_suggester

    if config.flows.process_every_minutes < 1:
        raise ConfigError("[flows] process_every_minutes must be at least 1")
    params = flow_parameters(project_dir, config, registered_model)
    tag = f"qualflow:{config.name}"
    return [
        process_interviews.to_deployment(
            name=f"{config.name}-process",
            interval=timedelta(minutes=config.flows.process_every_minutes),
            parameters=params["process_interviews"],
            tags=[tag],
        ),
        retrain_suggester.to_deployment(
            name=f"{config.name}-retrain",
            cron=config.flows.retrain_cron,
            parameters=params["retrain_suggester"],
            tags=[tag],
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
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "schedules need a running Prefect server: use `qualflow serve --start-server` for a local one, "
            "or set PREFECT_API_URL to your team's server (e.g. http://127.0.0.1:4200/api)"
        )
    from prefect import serve as prefect_serve

    prefect_serve(*build_deployments(project_dir, config, registered_model))
