"""The team setup end to end, with real servers on loopback (docs/deploy.md): a Prefect server, a
process work pool and a worker running the deployment on a Dask LocalCluster; an MLflow tracking
server. Nothing is mocked; every subprocess is stopped by the test, with timeouts so nothing hangs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.flows.test_flows import (  # noqa: F401 - fixtures
    REPO,
    code_sources,
    counts,
    harness,
    loopback_only,
    make_project,
    set_config,
)

pytestmark = pytest.mark.flow


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a subprocess started in its own session, with its children; kill it if it lingers."""
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-n:] if path.exists() else ""


def test_a_process_worker_runs_the_pool_deployment_with_dask(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.serve import deploy_to_pool, local_prefect_server, worker_command
    from pipeline.config import load_config

    root = make_project(tmp_path / "study", 4)
    set_config(root, task_runner="dask", dask_workers=2)
    cfg = load_config(root)
    pool = "qualflow-test"
    with local_prefect_server(tmp_path / "prefect-home", timeout=180) as url:
        old = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings({PREFECT_API_URL: url}):
                names = deploy_to_pool(root, cfg, "qualflow-suggester", pool)
                assert names == ["process_interviews/study-process", "retrain_suggester/study-retrain"]
                # registering again updates the deployments (the pool exists now)
                assert deploy_to_pool(root, cfg, "qualflow-suggester", pool) == names
                with get_client(sync_client=True) as client:
                    assert client.read_work_pool(pool).type == "process"
                    dep = client.read_deployment_by_name(names[0])
                    assert dep.entrypoint == "flows.process.process_interviews"
                    assert dep.parameters["project_dir"] == str(root)
                run = run_deployment(names[0], timeout=0)
                cmd = worker_command(pool).split()
                exe = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
                env = {
                    **os.environ,
                    "PREFECT_API_URL": url,
                    "PREFECT_WORKER_QUERY_SECONDS": "2",
                    "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                    "PREFECT_HOME": str(tmp_path / "worker-home"),
                }
                log = tmp_path / "worker.log"
                with log.open("wb") as out:
                    worker = subprocess.Popen(
                        [exe, *cmd[1:], "--limit", "1"],
                        env=env,
                        cwd=tmp_path,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                    try:
                        deadline = time.monotonic() + 300
                        with get_client(sync_client=True) as client:
                            while True:
                                state = client.read_flow_run(run.id).state
                                if state is not None and state.is_final():
                                    break
                                assert worker.poll() is None, _tail(log)
                                assert time.monotonic() < deadline, (
                                    f"flow run not done: {state}\n{_tail(log)}"
                                )
                                time.sleep(1)
                            assert state.is_completed(), f"{state}\n{_tail(log)}"
                            task_names = {t.name.rsplit("-", 1)[0] for t in client.read_task_runs()}
                    finally:
                        _stop(worker)
        finally:
            if old is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = old
    assert {"parse-file", "embed-chunk"} <= task_names  # the fan-out ran (on Dask)
    n = counts(root)
    assert n["sources"] == 4 and n["processed"] == 4 and n["suggestions"] > 0


@contextmanager
def mlflow_server(home: Path, backend_uri: str, timeout: float = 180.0) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 (one worker, job execution off, as docs/deploy.md says)."""
    from flows.serve import free_port

    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    cmd = [
        exe, "server", "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(home / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = home / "mlflow.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, _tail(log)
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # loopback only
                        if r.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"mlflow server not up in {timeout} s\n{_tail(log)}"
                time.sleep(0.5)
            yield url
        finally:
            _stop(proc)


def _train_and_log_agreement_on(root: Path, url: str) -> None:
    import mlflow

    from flows.agreement import agreement_report
    from flows.process import process_interviews
    from flows.retrain import retrain_suggester

    set_config(root, mlflow_tracking_uri=url)
    process_interviews(str(root), discover=False)
    code_sources(root, [f"int{i:02d}" for i in range(6)])
    trained = retrain_suggester(str(root), suggester="linear")
    assert trained.decision.promote and trained.version == "1"
    agreed = agreement_report(str(root), n_boot=0)

    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    run = client.get_run(trained.run_id)
    assert run.data.params["suggester"] == "linear" and run.data.metrics["macro_f1"] > 0.9
    version = client.get_model_version_by_alias("qualflow-suggester", "champion")
    assert str(version.version) == "1" and version.run_id == trained.run_id
    assert client.get_run(agreed.run_id).data.metrics["pooled.percent"] > 0
    assert {a.path for a in client.list_artifacts(agreed.run_id)} >= {"agreement.json"}
    # and the next processing run loads the champion from the server
    (root / "inbox" / "int20.txt").write_text(
        (root / "inbox" / "int00.txt").read_text().replace("P0:", "P20:")
    )
    assert process_interviews(str(root), discover=False).model == "qualflow-suggester@1"


@pytest.mark.usefixtures("harness")
def test_train_and_agreement_against_an_mlflow_server(tmp_path: Path) -> None:
    root = make_project(tmp_path / "study", 6)
    with mlflow_server(tmp_path / "mlflow", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}") as url:
        _train_and_log_agreement_on(root, url)
    assert not (root / "mlflow.db").exists()  # nothing went to the local default store


@pytest.mark.usefixtures("harness")
def test_an_mlflow_server_on_postgresql(pg_cluster, tmp_path: Path) -> None:
    backend = pg_cluster.create_database()
    try:
        root = make_project(tmp_path / "study", 6)
        with mlflow_server(tmp_path / "mlflow", backend) as url:
            _train_and_log_agreement_on(root, url)
    finally:
        pg_cluster.drop_database(backend.rsplit("/", 1)[1])
