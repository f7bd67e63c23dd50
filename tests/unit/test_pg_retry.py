"""Incident tasks that talk to PostgreSQL retry a blip (issue 15: a blip in a step without retries failed the
incident run), and only a blip: a refused fencing token or a state conflict fails at once."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from cassandra_recovery.incident.store import StateConflict
from tasks import incident, recovery
from tasks.pg_retry import is_transient_postgres, on_postgres_blip
from tests import faults as F

pytestmark = pytest.mark.area("incident")


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("the store call failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.fault(F.POSTGRES_DOWN)
@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (PoolTimeout("couldn't get a connection after 30.00 sec"), True),
        (_raised_from(psycopg.OperationalError("connection refused")), True),
        (StateConflict("inc-1", "assessing", "escalated"), False),
        (ValueError("a bug"), False),
        (None, False),
    ],
)
def test_only_postgres_being_away_is_retried(exc: BaseException | None, retried: bool) -> None:
    assert is_transient_postgres(exc) is retried
    assert on_postgres_blip(None, None, SimpleNamespace(data=exc)) is retried


@pytest.mark.fault(F.POSTGRES_DOWN)
@pytest.mark.parametrize(
    "task",
    [
        incident.release_lease,
        incident.transition,
        incident.store_plan,
        incident.slack_thread,
        incident.slack_reply,
        incident.get_incident,
        incident.incident_events,
        recovery.renew_lease,
        recovery.record_event,
        recovery.mitigate,
        recovery.restore_normal,
        recovery.automation_stopped,
    ],
    ids=lambda t: t.name,
)
def test_incident_tasks_over_postgres_retry_a_blip(task: object) -> None:
    assert getattr(task, "retries", 0) >= 1 and getattr(task, "retry_condition_fn", None) is on_postgres_blip
