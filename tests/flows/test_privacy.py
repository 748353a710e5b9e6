"""Privacy: telemetry off, no prefect/mlflow in the library, and the flows run with only loopback allowed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_disable_telemetry_sets_every_switch_but_keeps_the_users(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.privacy import TELEMETRY_OFF, disable_telemetry

    for key in TELEMETRY_OFF:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    disable_telemetry()
    assert os.environ["DO_NOT_TRACK"] == "true"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert os.environ["HF_HUB_OFFLINE"] == "0"  # set by the user: kept


def test_the_library_imports_neither_prefect_nor_mlflow() -> None:
    code = (
        "import importlib, pkgutil, sys, pipeline, models\n"
        "for pkg in (pipeline, models):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "import cli.app, cli.flows_commands\n"
        "bad = {'prefect', 'mlflow'} & set(sys.modules); assert not bad, bad"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_only_flows_tracking_imports_mlflow() -> None:
    pattern = re.compile(r"^\s*(import mlflow|from mlflow)", re.M)
    offenders = [
        str(p.relative_to(REPO))
        for folder in ("pipeline", "models", "flows", "review")
        for p in (REPO / folder).rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8")) and p != REPO / "flows" / "tracking.py"
    ]
    assert offenders == []


GUARDED_RUN = """
import sys
import pytest_socket
pytest_socket.socket_allow_hosts(["127.0.0.1", "::1", "localhost"], allow_unix_socket=True)
sys.path.insert(0, {repo!r})
from tests.flows.test_flows import code_sources, make_project
from pathlib import Path
from flows.process import process_interviews
from flows.retrain import retrain_suggester
root = make_project(Path(sys.argv[1]), 4)
r = process_interviews(str(root), discover=False)
assert len(r.processed) == 4, r.lines()
code_sources(root, ["int00", "int01", "int02", "int03"])
t = retrain_suggester(str(root), suggester="linear")
assert t.decision.promote
print("ok")
"""


@pytest.mark.flow
def test_flows_run_with_every_non_loopback_connection_refused(tmp_path: Path) -> None:
    """Ephemeral Prefect (as `qualflow process` runs it) and MLflow, in a process where pytest-socket
    refuses any connection that is not to 127.0.0.1 / ::1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API") and k != "PREFECT_HOME"}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        DO_NOT_TRACK="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_DISABLE_TELEMETRY="true",
        HF_HUB_OFFLINE="1",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )
    script = GUARDED_RUN.format(repo=str(REPO))
    res = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "proj")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
    assert "SocketBlockedError" not in res.stderr
