"""Shared fixtures. Telemetry is off for every test; nothing here touches the network."""

from __future__ import annotations

import os
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


@pytest.fixture
def project(tmp_path: Path):
    """A fresh, empty project in a temporary folder."""
    from pipeline.project.core import init_project

    proj = init_project(tmp_path / "proj")
    yield proj
    proj.close()
