"""Shared fixtures. Telemetry is off for every test; nothing here touches the network."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

for _k, _v in {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}.items():
    os.environ.setdefault(_k, _v)
# the default embedding model is onnx-fp32:minilm: export it once for the whole suite, not once per project
os.environ.setdefault(
    "QUALFLOW_ONNX_CACHE", str(Path(tempfile.gettempdir()) / f"qualflow-tests-onnx-{os.getuid()}")
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"


def shared_dir() -> Path | None:
    """``../shared`` next to the repository (absent on a user's clone), or ``QUALFLOW_SHARED``."""
    env = os.environ.get("QUALFLOW_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


@pytest.fixture
def demo_dir() -> Path:
    return DEMO


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for the session (tests/pg.py), or a skip saying how to get one."""
    from tests import pg

    why = pg.unavailable()
    if why and os.environ.get("QUALFLOW_REQUIRE_POSTGRES"):  # CI (.ci/run): a skip would hide the half
        pytest.fail(why.replace("tests skipped", "tests required (QUALFLOW_REQUIRE_POSTGRES)"))
    if why:
        pytest.skip(why)
    cluster = pg.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest):
    """The project database: ``None`` (the default SQLite file in the project folder) or a fresh,
    empty PostgreSQL database on :func:`pg_cluster`, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def project(tmp_path: Path, db_url: str | None):
    """A fresh, empty project in a temporary folder, on SQLite and on PostgreSQL."""
    from pipeline.project.core import init_project

    proj = init_project(tmp_path / "proj", database_url=db_url)
    yield proj
    proj.close()


_PG_SKIPPED: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a PostgreSQL server, leave out the PostgreSQL half (one summary line says how to enable it)."""
    if os.environ.get("QUALFLOW_REQUIRE_POSTGRES"):
        return  # CI: the pg_cluster fixture fails instead

    def on_pg(item: pytest.Item) -> bool:
        params = getattr(getattr(item, "callspec", None), "params", {})
        return "postgresql" in params.values() or "pg_cluster" in getattr(item, "fixturenames", ())

    pg_items = [i for i in items if on_pg(i)]
    if not pg_items:
        return
    from tests import pg

    why = pg.unavailable()
    if why is None:
        return
    items[:] = [i for i in items if not on_pg(i)]
    config.hook.pytest_deselected(items=pg_items)
    _PG_SKIPPED.append(why.replace("tests skipped", f"half not run ({len(pg_items)} tests)", 1))


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for line in _PG_SKIPPED:
        terminalreporter.write_line(line)
