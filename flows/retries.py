"""How the flows' I/O tasks retry: twice, a second apart, for a passing failure (a locked database,
a slow disk), never for a :class:`~pipeline.errors.QualflowError`: bad input, a missing codebook or
too few codings fail the same way every time, so a retry would only delay the one-line error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from pipeline.errors import QualflowError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.tasks import Task

P = ParamSpec("P")
R = TypeVar("R")


def retry_unless_user_error(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's ``retry_condition_fn``: ``False`` (fail at once) when the task raised a user error;
    Prefect hands the raised exception over as the failed state's ``data``."""
    return not isinstance(state.data, QualflowError)


def io_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """``@task`` for a step that reads or writes (the database, MLflow, files): retried as above."""
    return task(
        name=name,
        retries=2,
        retry_delay_seconds=1,
        retry_condition_fn=retry_unless_user_error,
        cache_policy=NO_CACHE,
    )
