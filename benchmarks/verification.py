"""Per-replica verification against a bare scan, and narrowing cost, on the lab (`cassandra-recovery lab up
--postgres`). Same run, same lab, same rows:

- throughput: rows/s over three replicas (every replica's copy read with traced, pinned CL ONE reads, hashed
  and compared with PostgreSQL), against a bare driver scan of all token ranges at CL ONE (one copy, no trace,
  no hashing), as a ratio; peak Python memory (tracemalloc) of the verification;
- narrowing: 10 keys changed in PostgreSQL only (every replica then differs at those keys): rows read back
  while narrowing to the keys, as a share of the table.

Usage: .venv/bin/python benchmarks/verification.py [--rows 100000 1000000] [--bad-keys 10]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from psycopg import sql

from cassandra_recovery.logic.checksum import token_chunks
from cassandra_recovery.logic.murmur3 import token_of
from cassandra_recovery.settings import DomainConfig, Settings
from cassandra_recovery.storage.migrate import upgrade_for
from cassandra_recovery.verification.service import verify
from cassandra_recovery.verification.verifier import VerifyConfig
from cassandra_recovery.wiring import ServiceParts, service_parts

DOMAIN = {"keyspace": "shop_vbench", "orders_table": "orders_vbench", "outbox_table": "outbox_vbench",
          "policy_table": "policy_vbench"}  # fmt: skip


def load(parts: ServiceParts, rows: int) -> None:
    """The same rows in PostgreSQL (COPY) and Cassandra (concurrent inserts, version as write time)."""
    d = parts.pg.store.cfg
    parts.cql.truncate(d.keyspace, d.cassandra_table, timeout_s=120)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    data = [(f"b-{i:08d}", f"cust-{i % 997}", "new", i % 100_000, now, 1_000_000 + i) for i in range(rows)]
    with parts.pg.pool.connection() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(d.orders_table)))
        copy_sql = sql.SQL(
            "COPY {} (id, customer, status, amount_cents, updated_at, version, token) FROM STDIN"
        ).format(sql.Identifier(d.orders_table))
        with conn.cursor().copy(copy_sql) as cp:
            for r in data:
                cp.write_row((*r, token_of(r[0])))
        conn.commit()
    insert = parts.cql.session.prepare(
        f"INSERT INTO {d.keyspace}.{d.cassandra_table} (id, customer, status, amount_cents, updated_at, version)"
        " VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    )
    # Unlogged batches of 25 rows: the client (2 cores, pure-Python encoding) is the bottleneck, not Cassandra.
    batches = []
    for i in range(0, rows, 25):
        b = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=ConsistencyLevel.ALL)
        for r in data[i : i + 25]:
            b.add(insert, (*r, r[5]))
        batches.append((b,))
    for i in range(0, len(batches), 2000):
        for ok, res in execute_concurrent(parts.cql.session, [(b, ()) for (b,) in batches[i : i + 2000]], 64):
            if not ok:
                raise RuntimeError(res)


def bare_scan(parts: ServiceParts, chunks: int) -> dict[str, Any]:
    d = parts.pg.store.cfg
    stmt = SimpleStatement(
        f"SELECT id, customer, status, amount_cents, updated_at, version FROM {d.keyspace}.{d.cassandra_table}"
        " WHERE token(id) > %s AND token(id) <= %s",
        consistency_level=ConsistencyLevel.ONE,
        fetch_size=5000,
    )
    t0 = time.perf_counter()
    n = 0
    for lo, hi in token_chunks(chunks):
        n += sum(1 for _ in parts.cql.session.execute(stmt, (lo, hi), timeout=120))
    return {"rows": n, "elapsed_s": round(time.perf_counter() - t0, 2)}


def change_truth(parts: ServiceParts, keys: list[str]) -> None:
    d = parts.pg.store.cfg
    q = sql.SQL("UPDATE {} SET status = 'changed', version = version + 1 WHERE id = ANY(%s)").format(
        sql.Identifier(d.orders_table)
    )
    with parts.pg.pool.connection() as conn:
        conn.execute(q, (keys,))
        conn.commit()


def narrow_only(settings: Settings, parts: ServiceParts, keys: list[str], cfg: VerifyConfig) -> list[Any]:
    """Narrowing alone, on each replica of the chunks that hold the changed keys (what a verification does after
    its chunk pass found those chunks differing)."""
    from cassandra_recovery.logic.verify_plan import plan_chunks
    from cassandra_recovery.verification.tables import orders_spec
    from cassandra_recovery.verification.truth import SourceOfTruth
    from cassandra_recovery.verification.verifier import Verifier, keyspace_ranges

    cluster = settings.cluster("lab")
    d = parts.pg.store.cfg
    truth = SourceOfTruth(parts.pg.pool, d)
    ranges = keyspace_ranges(parts.cql, cluster.nodes[0].address, d.keyspace)
    chunks = plan_chunks(ranges, truth.total_rows(), cfg.target_rows_per_chunk)
    v = Verifier(cluster, parts.cql, orders_spec(d), truth, cfg)
    live = {n.address for n in cluster.nodes}
    wanted = {token_of(k) for k in keys}
    hit = [c for c in chunks if any(c.start < t <= (c.end if c.end != -(2**63) else 2**63 - 1) for t in wanted)]
    return [v._narrow(c, r, live) for c in hit for r in c.replicas]


def one_size(settings: Settings, parts: ServiceParts, rows: int, bad: int) -> dict[str, Any]:
    load(parts, rows)
    cfg = VerifyConfig(target_rows_per_chunk=5000, preview=False)
    tracemalloc.start()
    t0 = time.perf_counter()
    rep = verify(settings, "lab", config=cfg)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    base = bare_scan(parts, rep.chunks)
    ours_rps = rep.rows_compared / elapsed
    base_rps = base["rows"] / base["elapsed_s"]
    keys = [f"b-{i:08d}" for i in range(0, rows, max(1, rows // bad))][:bad]
    change_truth(parts, keys)
    narrowed = narrow_only(settings, parts, keys, cfg)
    found = sorted({k for d in narrowed for k in d.different})
    listed = sum(d.rows_listed for d in narrowed)
    per_replica = listed / 3
    return {
        "rows": rows,
        "verdict": rep.verdict,
        "unverified": len(rep.unverified),
        "chunks": rep.chunks,
        "verify_s": round(elapsed, 2),
        "verify_rows_per_s_over_3_replicas": round(ours_rps),
        "bare_scan_cl_one": base | {"rows_per_s": round(base_rps)},
        "ratio_ours_over_bare": round(ours_rps / base_rps, 2),
        "peak_python_mib": round(peak / 2**20, 1),
        "narrowing": {
            "bad_keys": len(keys),
            "found_all": sorted(found) == sorted(keys),
            "rows_listed_per_replica": round(per_replica),
            "share_of_table_per_replica": round(per_replica / rows, 4),
            "summaries": sum(d.summaries for d in narrowed),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--bad-keys", type=int, default=10)
    args = ap.parse_args()
    settings = Settings().model_copy(update={"domain": DomainConfig(**DOMAIN)})  # type: ignore[arg-type]
    upgrade_for(settings)  # the benchmark's own table names, migrated as `db upgrade` does
    parts = service_parts(settings)
    out: list[dict[str, Any]] = []
    try:
        for n in args.rows:
            out.append(one_size(settings, parts, n, args.bad_keys))
            print(json.dumps(out[-1]), flush=True)
    finally:
        parts.close()
    print(json.dumps(out, indent=2))  # all sizes again, together


if __name__ == "__main__":
    main()
