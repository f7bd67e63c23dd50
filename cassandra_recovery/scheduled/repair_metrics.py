"""Repair gauges beside the detector's: segments by state, and per table the last successful repair and its
age against gc_grace_seconds (deleted data can resurrect once a replica misses a tombstone for that long)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.postgres import fetch_all
from cassandra_recovery.logic.repair_age import RepairAge, gauge_rows, repair_ages
from cassandra_recovery.scheduled.schedule_log import ScheduleLog

log = logging.getLogger(__name__)
_SEGMENTS = """SELECT s.state, count(*) AS n FROM repair_segments s JOIN repair_runs r USING (run_key)
WHERE r.cluster_id = %s GROUP BY s.state"""


class RepairMetrics:
    def __init__(self, cluster_id: str, registry: CollectorRegistry):
        self.cluster_id = cluster_id
        r = registry
        labels = ["cluster", "keyspace", "table"]
        self.segments = Gauge("cr_repair_segments", "repair segments by state", ["cluster", "state"], registry=r)
        self.last_success = Gauge(
            "cr_repair_last_success_timestamp_seconds", "end of the last successful repair", labels, registry=r
        )
        self.age = Gauge("cr_repair_age_seconds", "time since the last successful repair", labels, registry=r)
        self.ratio = Gauge("cr_repair_age_gc_grace_ratio", "repair age / gc_grace_seconds", labels, registry=r)

    def refresh(self, pool: ConnectionPool, cql: CqlClient, now: datetime | None = None) -> int:
        """Read repair history (PostgreSQL) and gc_grace (the cluster's schema); returns the tables reported."""
        sl = ScheduleLog(pool)
        with pool.connection() as conn:
            counts = {r["state"]: int(r["n"]) for r in fetch_all(conn.execute(_SEGMENTS, (self.cluster_id,)))}
            conn.rollback()
        for state in ("pending", "running", "done", "failed"):
            self.segments.labels(self.cluster_id, state).set(counts.get(state, 0))
        ages = current_repair_ages(sl, cql, self.cluster_id, now or datetime.now(UTC))
        for ks, table, last, age, ratio in gauge_rows(ages):
            self.last_success.labels(self.cluster_id, ks, table).set(last)
            self.age.labels(self.cluster_id, ks, table).set(age)
            self.ratio.labels(self.cluster_id, ks, table).set(ratio)
        return len(ages)

    def run_every(
        self, every_s: float, pool: ConnectionPool, cql: CqlClient, stop: threading.Event
    ) -> threading.Thread:
        def loop() -> None:
            while not stop.is_set():
                try:
                    self.refresh(pool, cql)
                except Exception as e:  # metrics never stop the detector
                    log.warning("repair metrics not refreshed: %s", e)
                stop.wait(every_s)

        t = threading.Thread(target=loop, name="repair-metrics", daemon=True)
        t.start()
        return t


def current_repair_ages(log: ScheduleLog, cql: CqlClient, cluster_id: str, now: datetime) -> list[RepairAge]:
    """Every user table's repair age: the runs this tool finished (PostgreSQL) against gc_grace (the schema)."""
    history = [{"keyspace": ks, "table": None, "finished_at": at, "ok": True} for ks, at in log.last_success(
        cluster_id).items()]  # fmt: skip
    rows = cql.execute("SELECT keyspace_name, table_name, gc_grace_seconds FROM system_schema.tables")
    gc = {(r["keyspace_name"], r["table_name"]): int(r["gc_grace_seconds"]) for r in rows
          if not str(r["keyspace_name"]).startswith("system")}  # fmt: skip
    return repair_ages(history, gc, now)
