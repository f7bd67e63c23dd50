"""The real inbox told apart: an alert PostgreSQL refuses (NUL, lone surrogate) versus PostgreSQL down or busy."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime

import pytest
from psycopg_pool import ConnectionPool

from cassandra_recovery.intake.memory import MemoryIncidents, RecordingLauncher
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.payload import Alert, Status
from cassandra_recovery.intake.ports import AlertRejected, SpoolItem, StoreBusy
from cassandra_recovery.intake.service import Intake
from cassandra_recovery.intake.spool import PgSpool
from cassandra_recovery.settings import Settings
from tests.contract.test_intake_spool import TABLE, item, pool, spool  # noqa: F401  # module fixtures

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("intake"),
]


def alert(summary: str, status: Status = "resolved") -> Alert:
    return Alert(
        source="alertmanager", status=status, cluster_id="lab", name="CassandraNodeDown",
        fingerprint=uuid.uuid4().hex, starts_at=datetime.now(UTC), ends_at=None, nodes=("127.0.0.2",),
        summary=summary, labels={"note": summary},
    )  # fmt: skip


def _gauge(metrics: ReceiverMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


@pytest.mark.parametrize("text", ["nul \x00 in a label", "lone \ud800 surrogate"])
def test_an_alert_postgresql_refuses_is_rejected_not_store_down(spool: PgSpool, text: str) -> None:  # noqa: F811
    with pytest.raises(AlertRejected):
        spool.put(SpoolItem.of(alert(text)), hold_s=0)
    launcher = RecordingLauncher()
    launcher.up = False  # before: the refused alert read as "PostgreSQL down", delivered directly, failed: 503
    metrics = ReceiverMetrics()
    intake = Intake(spool, MemoryIncidents(), launcher, metrics)
    try:
        result = intake.ingest([alert(text), alert("fine")])
    finally:
        intake.close()
    assert [a.result for a in result.alerts] == ["rejected", "recorded"]
    assert result.store == "ok" and result.http_status == 422
    assert _gauge(metrics, "cr_receiver_store_up") == 1.0


def test_pool_exhaustion_is_busy_not_store_down() -> None:
    s = Settings()
    tiny = ConnectionPool(s.postgres_conninfo(), min_size=1, max_size=1, timeout=0.2, open=True, name="tiny")
    busy_spool = PgSpool(tiny, TABLE)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with tiny.connection():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    metrics = ReceiverMetrics()
    metrics.store_up.set(1.0)  # PostgreSQL answered before every connection got taken
    intake = Intake(busy_spool, MemoryIncidents(), RecordingLauncher(), metrics)
    try:
        assert held.wait(10)
        with pytest.raises(StoreBusy):
            busy_spool.put(item(), hold_s=0)
        result = intake.ingest([alert("node down", "firing")])
        assert result.store == "busy" and [a.result for a in result.alerts] == ["direct"]
        assert _gauge(metrics, "cr_receiver_store_up") == 1.0
        assert _gauge(metrics, "cr_receiver_store_busy_total") == 1.0
    finally:
        release.set()
        holder.join()
        intake.close()
        tiny.close()
