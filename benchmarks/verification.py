"""Per-replica verification against a bare scan, and narrowing cost, on the lab (`cassandra-recovery lab up
--postgres`). Same run, same lab, same rows:

- throughput: row copies/s over three replicas (every replica's copy read with traced, pinned CL ONE reads,
  hashed and compared with PostgreSQL), against a bare driver scan of all token ranges at CL ONE (one copy, no
  trace, no hashing, rows as tuples like the verification's), as a ratio; each side runs three times,
  interleaved, and its median run counts;
- memory: the verification runs again in a child process of its own and reports how far its resident memory
  grew during the pass (peak RSS minus RSS before it: the driver's buffers and decoded pages included). Not
  tracemalloc: it slows the driver's row decoding several fold and made the first measurements wrong;
- the outage-scoped proof: the writes a 60 s outage sees (`--outage-writes-per-s`, existing orders updated in
  PostgreSQL and on every replica), then the proof over them: ranges, rows read and time against the full pass
  of the same table. Its cost should follow the writes, not the table;
- narrowing: 10 keys changed in PostgreSQL only (every replica then differs at those keys): rows read back
  while narrowing to the keys, as a share of the table.

Usage: .venv/bin/python benchmarks/verification.py [--rows 100000 1000000] [--bad-keys 10] [--outage-writes-per-s 5]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from psycopg import sql

from cassandra_recovery.clients.postgres import fetch_all
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
        _write_all(parts, [b for (b,) in batches[i : i + 2000]])


def _write_all(parts: ServiceParts, batches: list[BatchStatement], tries: int = 8) -> None:
    """Every batch at CL ALL; a timed-out one is written again (same rows, same write time: idempotent). A lab
    just started times out now and then while its nodes compile and flush (the load failed there before)."""
    todo = batches
    for attempt in range(tries):
        results = execute_concurrent(parts.cql.session, [(b, ()) for b in todo], 32, raise_on_first_error=False)
        failed = [(b, res) for b, (ok, res) in zip(todo, results, strict=True) if not ok]
        if not failed:
            return
        print(f"load: {len(failed)} batch(es) timed out (attempt {attempt + 1}); writing them again", flush=True)
        todo = [b for b, _ in failed]
        time.sleep(min(2.0**attempt, 10.0))
    raise RuntimeError(f"{len(todo)} batch(es) not written after {tries} attempts: {failed[0][1]}")


def settle(settings: Settings, timeout_s: float = 180.0) -> dict[str, Any]:
    """Memtables flushed and compactions done on every node before measuring: right after a bulk load the nodes
    are busy compacting, reads are slow and uneven, and the dynamic snitches send reads pinned to one replica to
    another (each such read is asked again): that would measure the load's aftermath, not the verification."""
    from cassandra_recovery.clients.nodetool import Nodetool

    cluster = settings.cluster("lab")
    tool = Nodetool(cluster)
    t0 = time.perf_counter()
    for node in cluster.nodes:
        tool.output(node.name, "flush", DOMAIN["keyspace"], timeout_s=120)
    pending = -1
    while time.perf_counter() - t0 < timeout_s:
        outs = [tool.output(n.name, "compactionstats", timeout_s=60) for n in cluster.nodes]
        pending = sum(pending_compactions(o) for o in outs)
        if pending == 0:
            break
        time.sleep(5)
    time.sleep(10)  # the last compaction's I/O settles
    return {"settle_s": round(time.perf_counter() - t0, 1), "pending_compactions": pending}


def pending_compactions(compactionstats: str) -> int:
    """`pending tasks` from `nodetool compactionstats`: "pending tasks: 3" (4.x) or "pending tasks    3" (5.0)."""
    m = re.search(r"^pending tasks\D*(\d+)", compactionstats, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"no pending tasks in compactionstats: {compactionstats[:200]!r}")
    return int(m.group(1))


def bare_scan(parts: ServiceParts, chunks: int) -> dict[str, Any]:
    d = parts.pg.store.cfg
    stmt = SimpleStatement(
        f"SELECT id, customer, status, amount_cents, updated_at, version FROM {d.keyspace}.{d.cassandra_table}"
        " WHERE token(id) > %s AND token(id) <= %s",
        consistency_level=ConsistencyLevel.ONE,
        fetch_size=5000,
    )
    tuples = parts.cql.tuple_rows()  # the cheapest plain scan: rows as tuples, as the verification reads them
    t0 = time.perf_counter()
    n = 0
    for lo, hi in token_chunks(chunks):
        n += sum(1 for _ in parts.cql.session.execute(stmt, (lo, hi), timeout=120, execution_profile=tuples))
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


def verify_once(settings: Settings, cfg: VerifyConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    rep = verify(settings, "lab", config=cfg)
    elapsed = time.perf_counter() - t0
    return {"verdict": rep.verdict, "unverified": len(rep.unverified), "chunks": rep.chunks, "reads": rep.reads,
            "probes": rep.probes, "latency_refreshes": rep.latency_refreshes,
            "rows_compared": rep.rows_compared, "rows_read": rep.rows_read, "verify_s": round(elapsed, 2)}  # fmt: skip


def outage_writes(parts: ServiceParts, rows: int, count: int) -> list[str]:
    """`count` existing orders (spread over the table) updated in PostgreSQL and written to every replica at the
    new version: what the incident's window holds after a clean outage."""
    d = parts.pg.store.cfg
    keys = [f"b-{i:08d}" for i in random.Random(count).sample(range(rows), count)]
    q = sql.SQL(
        "UPDATE {} SET status = 'paid', version = version + 1 WHERE id = ANY(%s)"
        " RETURNING id, customer, status, amount_cents, updated_at, version"
    ).format(sql.Identifier(d.orders_table))
    with parts.pg.pool.connection() as conn:
        changed = fetch_all(conn.execute(q, (keys,)))
        conn.commit()
    insert = parts.cql.session.prepare(
        f"INSERT INTO {d.keyspace}.{d.cassandra_table} (id, customer, status, amount_cents, updated_at, version)"
        " VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    )
    insert.consistency_level = ConsistencyLevel.ALL
    cols = ("id", "customer", "status", "amount_cents", "updated_at", "version")
    args = [(*(r[c] for c in cols), r["version"]) for r in changed]
    for ok, res in execute_concurrent(parts.cql.session, [(insert, a) for a in args], 32, raise_on_first_error=False):
        if not ok:
            raise RuntimeError(f"outage write failed: {res}")
    return keys


def scoped_proof(settings: Settings, parts: ServiceParts, rows: int, count: int, cfg: VerifyConfig) -> dict[str, Any]:
    from cassandra_recovery.verification.truth import SourceOfTruth

    since = SourceOfTruth(parts.pg.pool, parts.pg.store.cfg).now()
    outage_writes(parts, rows, count)
    t0 = time.perf_counter()
    rep = verify(settings, "lab", config=cfg, missed_since=since, exact_window=True)
    elapsed = time.perf_counter() - t0
    scope = rep.scope or {}
    return {"writes": count, "scoped": scope.get("scoped"), "why": scope.get("why"), "ranges": scope.get("ranges"),
            "verdict": rep.verdict, "reads": rep.reads, "rows_read": rep.rows_read,
            "rows_compared": rep.rows_compared, "verify_s": round(elapsed, 2)}  # fmt: skip


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def memory_child(cfg: VerifyConfig) -> dict[str, Any]:
    """In a fresh process: the verification alone, and how far its resident memory grew during the pass."""
    settings = Settings().model_copy(update={"domain": DomainConfig(**DOMAIN)})  # type: ignore[arg-type]
    from cassandra_recovery.storage.facade import process_storage

    process_storage(settings)  # the pool exists before the pass, as in a flow run
    before = _status_kib("VmRSS:")
    out = verify_once(settings, cfg)
    return out | {"peak_rss_growth_mib": round((_status_kib("VmHWM:") - before) / 1024, 1)}


def measure_memory(cfg: VerifyConfig) -> dict[str, Any]:
    args = [sys.executable, __file__, "--memory-child", json.dumps(asdict(cfg))]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=3600)  # noqa: S603 - own script
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def one_size(settings: Settings, parts: ServiceParts, rows: int, bad: int, outage_rate: float) -> dict[str, Any]:
    load(parts, rows)
    settled = settle(settings)
    cfg = VerifyConfig.from_settings(settings.verification, preview=False)
    # Interleaved on a shared, noisy machine: bare scan, verification, bare, verification (in its own process, for
    # memory), bare, verification. The median of each side's three runs counts, so neither is judged on one noisy
    # moment, and both sides see the same stretch of time.
    bares: list[dict[str, Any]] = []
    passes: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    for i in range(3):
        bares.append(bare_scan(parts, 64))
        if i == 1:
            memory = measure_memory(cfg)
            passes.append(memory)
        else:
            passes.append(verify_once(settings, cfg))
    base = sorted(bares, key=lambda b: b["rows"] / b["elapsed_s"])[1]
    ours = dict(sorted(passes, key=lambda p: p["verify_s"])[1])
    ours.pop("peak_rss_growth_mib", None)
    ours_rps = ours["rows_compared"] / ours["verify_s"]
    base_rps = base["rows"] / base["elapsed_s"]
    runs = {"bare_rows_per_s": [round(b["rows"] / b["elapsed_s"]) for b in bares],
            "verify_copies_per_s": [round(p["rows_compared"] / p["verify_s"]) for p in passes]}  # fmt: skip
    scoped = scoped_proof(settings, parts, rows, round(outage_rate * 60), cfg)
    keys = [f"b-{i:08d}" for i in range(0, rows, max(1, rows // bad))][:bad]
    change_truth(parts, keys)
    narrowed = narrow_only(settings, parts, keys, cfg)
    found = sorted({k for d in narrowed for k in d.different})
    listed = sum(d.rows_listed for d in narrowed)
    per_replica = listed / 3
    return {
        "rows": rows,
        **ours,
        **settled,
        "config": {"rows_per_chunk": cfg.target_rows_per_chunk, "workers": cfg.workers, "page_rows": cfg.page_rows()},
        "verify_row_copies_per_s": round(ours_rps),
        "bare_scan_cl_one": base | {"rows_per_s": round(base_rps)},
        "ratio_ours_over_bare": round(ours_rps / base_rps, 2),
        "runs": runs,
        "memory": memory,
        "scoped_proof_60s_outage": scoped
        | {
            "time_over_full_pass": round(scoped["verify_s"] / ours["verify_s"], 3),
            "rows_read_over_full_pass": round(scoped["rows_read"] / max(1, ours["rows_read"]), 4),
        },
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
    ap.add_argument("--outage-writes-per-s", type=float, default=5.0)
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)  # internal: the memory measurement's own process
    args = ap.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(VerifyConfig(**json.loads(args.memory_child)))))
        return
    settings = Settings().model_copy(update={"domain": DomainConfig(**DOMAIN)})  # type: ignore[arg-type]
    upgrade_for(settings)  # the benchmark's own table names, migrated as `db upgrade` does
    parts = service_parts(settings)
    out: list[dict[str, Any]] = []
    try:
        for n in args.rows:
            out.append(one_size(settings, parts, n, args.bad_keys, args.outage_writes_per_s))
            print(json.dumps(out[-1]), flush=True)
    finally:
        parts.close()
    print(json.dumps(out, indent=2))  # all sizes again, together


if __name__ == "__main__":
    main()
