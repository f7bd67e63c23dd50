"""Retries for tasks whose work is short PostgreSQL transactions: a blip (connection lost, pool exhausted while
the server restarts) is retried; anything else (a refused fencing token, a state conflict) fails at once."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

TRANSIENT = (psycopg.OperationalError, PoolTimeout)


def is_transient_postgres(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from, is PostgreSQL being away for a moment."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, TRANSIENT):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def on_postgres_blip(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: the failed state's exception (its data) decides."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return is_transient_postgres(exc)


# A blip lasts seconds (a restart, a failover); three tries over ~20 s ride it out without hiding an outage.
PG_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [1, 5, 15], "retry_condition_fn": on_postgres_blip}
