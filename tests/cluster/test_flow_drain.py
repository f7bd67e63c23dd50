"""The relay called from a real Prefect flow run (temporary Prefect server and home)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cassandra_recovery.degraded.model import Order
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import pg_parts
from tests import faults as F
from tests.cluster.degraded_env import domain_env
from tests.migrated import migrated

pytestmark = pytest.mark.area("degraded")


@pytest.fixture
def flow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for k, v in domain_env(
        keyspace="shop_flow", orders_table="orders_flow", outbox_table="outbox_flow", policy_table="policy_flow"
    ).items():
        monkeypatch.setenv(k, v)
    yield


@pytest.mark.fault(F.RELAY_DOWN)
def test_drain_flow_delivers_the_queue(lab: Lab, flow_env: None) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.queue import drain_write_queue

    ensure_postgres(Settings())
    settings = Settings()
    assert settings.domain.outbox_table == "outbox_flow" and os.environ["PREFECT_HOME"].endswith("prefect")
    pg = pg_parts(migrated(settings))
    try:
        for i in range(25):
            pg.store.write(Order(id=f"flow-{i}", customer="c", status="new", amount_cents=i))
        assert pg.outbox.stats().queued >= 25
    finally:
        pg.close()
    with prefect_test_harness(server_startup_timeout=90):
        result = drain_write_queue(cluster_id="lab", timeout_s=120)
    assert result["drained"] is True and result["queued"] == 0 and result["run"]["delivered"] >= 25
