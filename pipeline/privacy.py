"""Telemetry off: interviews are confidential and qualflow talks to nothing beyond loopback.

Called at every entry point (CLI, flows, review app); never at import time.
"""

from __future__ import annotations

import os

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def disable_telemetry() -> None:
    """Set the telemetry switches off unless the user set them explicitly."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
