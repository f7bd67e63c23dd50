"""Degraded-mode library against bare baselines, in one run (ratios; needs `cassandra-recovery lab up --postgres`).

- service write (row + version + outbox entry in one transaction) vs a bare psycopg insert of the same rows
- relay drain rate (claim, versioned write at LOCAL_QUORUM, mark delivered) vs a bare driver insert
- compare throughput (chunked counts + checksums on both sides) vs a bare scan of both stores
Usage: .venv/bin/python benchmarks/degraded.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import json
import time

import psycopg
from cassandra import ConsistencyLevel
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

from cassandra_recovery.degraded.compare import Comparer
from cassandra_recovery.degraded.model import Order
from cassandra_recovery.settings import DomainConfig, Settings
from cassandra_recovery.storage.migrate import upgrade_for
from cassandra_recovery.wiring import service_parts

DOMAIN = DomainConfig(
    keyspace="bench",
    orders_table="bench_orders",
    outbox_table="bench_outbox",
    policy_table="bench_policy",
    relay_batch=500,
)


def _timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    n = ap.parse_args().rows
    settings = Settings().model_copy(update={"domain": DOMAIN})
    upgrade_for(settings)  # the benchmark's own table names, migrated as `db upgrade` does
    p = service_parts(settings)
    orders = [Order(id=f"bench-{i:07d}", customer=f"c{i % 97}", status="new", amount_cents=i) for i in range(n)]
    # The baseline's bare table is made by the schema's owner (the runtime role may not create tables); default
    # privileges give the runtime role its DML.
    with psycopg.connect(settings.migration_conninfo(), connect_timeout=5, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bare")
        conn.execute(
            "CREATE TABLE bench_bare (id text PRIMARY KEY, customer text, status text, amount_cents bigint,"
            " updated_at timestamptz)"
        )
    with p.pg.pool.connection() as conn:
        conn.execute("TRUNCATE bench_orders, bench_outbox")
        conn.commit()
    p.cql.execute("TRUNCATE bench.orders", timeout_s=60)
    p.cql.execute(
        "CREATE TABLE IF NOT EXISTS bench.bare (id text PRIMARY KEY, customer text, status text,"
        " amount_cents bigint, updated_at timestamp, version bigint)",
        timeout_s=60,
    )

    def bare_pg() -> None:
        for o in orders:
            with p.pg.pool.connection() as conn:
                conn.execute(
                    "INSERT INTO bench_bare VALUES (%s, %s, %s, %s, %s)",
                    (o.id, o.customer, o.status, o.amount_cents, o.updated_at),
                )

    bare_pg_s = _timed(bare_pg)
    service_s = _timed(lambda: [p.service.write(o) for o in orders])
    drain_s = _timed(lambda: p.relay.drain(timeout_s=600))
    insert = p.cql.session.prepare(
        "INSERT INTO bench.bare (id, customer, status, amount_cents, updated_at, version) VALUES (?, ?, ?, ?, ?, ?)"
    )
    insert.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    rows = [(o.id, o.customer, o.status, o.amount_cents, o.updated_at, 1) for o in orders]
    bare_c_s = _timed(lambda: execute_concurrent_with_args(p.cql.session, insert, rows, concurrency=50))
    cmp = Comparer(p.pg.pool, p.cql, DOMAIN)
    compare_s = _timed(lambda: cmp.run(chunks=16))

    def bare_scan() -> None:
        with p.pg.pool.connection() as conn:
            conn.execute("SELECT * FROM bench_orders").fetchall()
        list(
            p.cql.session.execute(
                SimpleStatement(
                    "SELECT * FROM bench.orders", fetch_size=2000, consistency_level=ConsistencyLevel.LOCAL_QUORUM
                ),
                timeout=120,
            )
        )

    scan_s = _timed(bare_scan)
    p.close()
    print(
        json.dumps(
            {
                "rows": n,
                "service_writes_per_s": round(n / service_s),
                "bare_pg_inserts_per_s": round(n / bare_pg_s),
                "ratio_service_over_bare_pg": round(bare_pg_s / service_s, 2),
                "relay_deliveries_per_s": round(n / drain_s),
                "bare_driver_inserts_per_s": round(n / bare_c_s),
                "ratio_relay_over_bare_driver": round(bare_c_s / drain_s, 2),
                "compare_rows_per_s": round(n / compare_s),
                "bare_scan_rows_per_s": round(n / scan_s),
                "ratio_compare_over_bare_scan": round(scan_s / compare_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
