"""Maintenance windows on real PostgreSQL: active only inside their interval, named in the plan's words."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.controls.silences import Silences
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.settings import Settings
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("incident"),
]


@pytest.fixture
def silences() -> Iterator[Silences]:
    ensure_postgres(Settings())
    pool = make_pool(migrated(Settings()), max_size=1)
    s = Silences(pool)
    yield s
    with pool.connection() as conn:
        conn.execute("DELETE FROM maintenance_windows WHERE cluster_id LIKE 'silence-test-%'")
        conn.commit()
    pool.close()


def test_window_is_active_only_inside_its_interval(silences: Silences) -> None:
    now = datetime.now(UTC)
    w = silences.add("silence-test-a", now, timedelta(minutes=30), "rolling restart", "pytest")
    assert silences.known_condition("silence-test-a", now + timedelta(minutes=1)) == (
        f"maintenance window #{w.id} until {w.ends_at.isoformat()} by pytest: rolling restart"
    )
    assert silences.known_condition("silence-test-a", now + timedelta(minutes=31)) is None
    assert silences.known_condition("silence-test-a", now - timedelta(seconds=1)) is None
    assert silences.known_condition("silence-test-b", now + timedelta(minutes=1)) is None
    with pytest.raises(ValueError, match="positive duration"):
        silences.add("silence-test-a", now, timedelta(0), "x", "pytest")
