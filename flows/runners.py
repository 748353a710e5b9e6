"""The task runner ``process_interviews`` fans its per-file work out over (``[flows] task_runner``).

``"thread"`` (the default) keeps every step in the flow's own process, one call after the other.
``"dask"`` runs parsing (one task per file) and embedding (one task per chunk of texts, one chunk per
Dask worker) on a Dask cluster: ``[flows] dask_address`` names a running scheduler, or, empty, a
``LocalCluster`` of ``[flows] dask_workers`` processes (one thread each) lives for the fan-out. The
database is written by the flow's own process only (ingest, suggestions, the processed-file marks),
never by a Dask worker: SQLite has one writer, and a worker on another machine has no business
holding a transaction on the project.

prefect-dask (and dask/distributed) are imported only when a Dask runner is made.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import FlowsConfig
from pipeline.errors import ConfigError


def dask_task_runner(flows: FlowsConfig) -> Any:
    """A ``prefect_dask.DaskTaskRunner`` for ``[flows] dask_address`` / ``dask_workers`` (not started)."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise ConfigError(
            '[flows] task_runner = "dask" needs prefect-dask: run `pip install prefect-dask` '
            '(or `make install`), or set task_runner = "thread"'
        ) from None
    if flows.dask_address:
        return DaskTaskRunner(address=flows.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": flows.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,  # no web dashboard: nothing listens beyond the scheduler
            "host": "127.0.0.1",
        }
    )


def fan_out(flows: FlowsConfig) -> Any | None:
    """The task runner to fan the per-file work out over, or ``None`` for the flow's own thread."""
    return dask_task_runner(flows) if flows.task_runner == "dask" else None


def worker_count(runner: Any, flows: FlowsConfig) -> int:
    """How many Dask workers the started ``runner`` has (the chunks embedding is split into)."""
    try:
        return max(1, len(runner.client.nthreads()))
    except Exception:
        return flows.dask_workers
