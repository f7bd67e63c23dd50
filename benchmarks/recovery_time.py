"""Heal to converged data after a 60 s outage inside the hint window: our pipeline's recovery (hint drain
watched to a verdict, queue drained, compare equal) against the manual runbook path (a full `nodetool repair`
on every node, then the same compare), in the same run on the same lab. Needs `cassandra-recovery lab up
--postgres`.

Usage: .venv/bin/python benchmarks/recovery_time.py [--outage 60] [--rate 30] [--ballast-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from psycopg import sql

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.degraded.compare import Comparer
from cassandra_recovery.degraded.workload import WorkloadSpec, run_workload
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.recovery.hints import watch_drain
from cassandra_recovery.settings import DomainConfig, Settings
from cassandra_recovery.storage.migrate import upgrade_for
from cassandra_recovery.wiring import ServiceParts, service_parts

DOMAIN = {"keyspace": "shop_bench", "orders_table": "orders_bench", "outbox_table": "outbox_bench",
          "policy_table": "policy_bench"}  # fmt: skip


def outage(lab: Lab, parts: ServiceParts, outage_s: float, rate: int) -> None:
    """node3 frozen for outage_s while writes go on (they reach node3 through hints only)."""
    lab.freeze("node3")
    spec = WorkloadSpec(rate=rate, duration_s=outage_s, keys=5000, read_ratio=0.0)
    load = threading.Thread(target=run_workload, args=(parts.service, spec), kwargs={"relay": parts.relay})
    load.start()
    load.join()
    lab.thaw("node3")


def load_ballast(parts: ServiceParts, rows: int) -> None:
    """Other data on the cluster, as production has: a full repair validates it too; hint replay does not."""
    from cassandra.concurrent import execute_concurrent_with_args

    s = parts.cql.session
    s.execute(
        "CREATE KEYSPACE IF NOT EXISTS bench_ballast WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    )
    s.execute("CREATE TABLE IF NOT EXISTS bench_ballast.kv (k int PRIMARY KEY, v text)")
    s.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    insert = s.prepare("INSERT INTO bench_ballast.kv (k, v) VALUES (?, ?)")
    value = "x" * 500
    execute_concurrent_with_args(s, insert, [(i, value) for i in range(rows)], concurrency=64)
    for n in parts.cluster.nodes:
        Nodetool(parts.cluster).run(n.name, "flush", "bench_ballast", timeout_s=300)


def converged(parts: ServiceParts) -> bool:
    return Comparer(parts.pg.pool, parts.cql, parts.pg.store.cfg).run(chunks=32).equal


def ours(parts: ServiceParts) -> dict[str, Any]:
    t0 = time.monotonic()
    drain = watch_drain(parts.cluster, parts.cql, [parts.cluster.node("node3").address], progress=lambda m: None)
    parts.relay.drain(timeout_s=120)
    ok = converged(parts)
    return {"seconds": round(time.monotonic() - t0, 1), "converged": ok, "hints": drain.state}


def manual(parts: ServiceParts) -> dict[str, Any]:
    t0 = time.monotonic()
    nt = Nodetool(parts.cluster)
    for n in parts.cluster.nodes:
        nt.run(n.name, "repair", "-full", timeout_s=1800)
    parts.relay.drain(timeout_s=120)
    ok = converged(parts)
    return {"seconds": round(time.monotonic() - t0, 1), "converged": ok}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outage", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=30)
    ap.add_argument("--ballast-rows", type=int, default=100_000, help="other data on the cluster (500 B rows)")
    args = ap.parse_args()
    settings = Settings().model_copy(update={"domain": DomainConfig(**DOMAIN)})  # type: ignore[arg-type]
    lab = Lab(settings.lab, progress=lambda m: None)
    upgrade_for(settings)  # the benchmark's own table names, migrated as `db upgrade` does
    parts = service_parts(settings)
    d = settings.domain
    with parts.pg.pool.connection() as conn:
        tables = [sql.Identifier(t) for t in (d.orders_table, d.outbox_table, d.policy_table)]
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))
        conn.commit()
    parts.cql.truncate(d.keyspace, d.cassandra_table)
    run_workload(parts.service, WorkloadSpec(rate=300, operations=3000, keys=5000, read_ratio=0.0), relay=parts.relay)
    load_ballast(parts, args.ballast_rows)
    results = {}
    for name, fn in (("ours", ours), ("manual_full_repair_every_node", manual)):
        outage(lab, parts, args.outage, args.rate)
        results[name] = fn(parts)
    parts.close()
    ratio = results["manual_full_repair_every_node"]["seconds"] / max(results["ours"]["seconds"], 0.1)
    doc = {"outage_s": args.outage, "ballast_rows": args.ballast_rows, **results, "manual_over_ours": round(ratio, 2)}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
