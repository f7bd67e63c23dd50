"""`cassandra-recovery hotspots`: ownership, load and key skew, hottest partitions and partition sizes."""

from __future__ import annotations

import argparse
import json

from cassandra_recovery.commands import progress
from cassandra_recovery.logic.hotspots import HotspotReport, format_bytes
from cassandra_recovery.settings import Settings

KEY_LIMIT = 100_000


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hotspots", help="sample a table for hot partitions and report ownership, load and key skew")
    p.add_argument("--cluster", default=None)
    p.add_argument("--keyspace", default=None, help="default: the domain keyspace (shop)")
    p.add_argument("--table", default=None, help="default: the domain cache table (orders)")
    p.add_argument("--sample-ms", type=int, default=5000, help="toppartitions sampling window (blocks that long)")
    p.add_argument(
        "--keys-from-postgres",
        action="store_true",
        help=f"spread of the order ids (first {KEY_LIMIT} of the PostgreSQL orders table) over the ring",
    )


def _keys_from_postgres(settings: Settings, cluster_id: str | None) -> list[str]:
    import psycopg
    from psycopg import sql

    from cassandra_recovery.clients.postgres import fetch_all
    from cassandra_recovery.errors import ConfigError
    from cassandra_recovery.wiring import pg_parts

    table = settings.domain.orders_table
    query = sql.SQL("SELECT id FROM {} ORDER BY id LIMIT %s").format(sql.Identifier(table))
    pg = pg_parts(settings, cluster_id)
    try:
        with pg.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(query, (KEY_LIMIT,))
            return [str(r["id"]) for r in fetch_all(cur)]
    except psycopg.errors.UndefinedTable as e:
        raise ConfigError(f"PostgreSQL table {table!r} does not exist (settings.domain.orders_table)") from e
    finally:
        pg.close()


def _text(report: HotspotReport) -> str:
    def pct(v: float | None) -> str:
        return "?" if v is None else f"{v:.1f}%"

    def num(v: float | None, unit: str = "") -> str:
        return "?" if v is None else f"{v:.2f}{unit}"

    def whole(v: float | None) -> str:
        return "?" if v is None else f"{v:.0f}"

    def size(v: float | None) -> str:
        return "?" if v is None else format_bytes(v)

    r = report
    lines = [
        f"{r.keyspace}.{r.table}: sampled {r.sample_ms} ms on {r.sampled_node}",
        f"ownership (effective): {', '.join(f'{a} {pct(o)}' for a, o in r.ownership.items())}; "
        f"skew {num(r.ownership_skew)}",
        f"load: {', '.join(f'{a} {size(b)}' for a, b in r.loads.items())}; skew {num(r.load_skew)}",
        f"top reads: {', '.join(f'{s.partition} {s.count}' for s in r.top_reads) or '-'}",
        f"top writes: {', '.join(f'{s.partition} {s.count}' for s in r.top_writes) or '-'}",
        f"partition size p99 {size(r.partition_size_p99_bytes)}, max {size(r.partition_size_max_bytes)}; "
        f"cells p99 {whole(r.cell_count_p99)}, max {whole(r.cell_count_max)}",
        f"latency p99 read {num(r.read_latency_p99_micros, ' us')}, write {num(r.write_latency_p99_micros, ' us')}",
    ]
    if r.key_distribution is not None:
        spread = ", ".join(f"{a} {n}" for a, n in r.key_distribution.items())
        lines.append(f"keys per primary owner: {spread}; skew {num(r.key_skew)}")
    lines += ["findings:", *(f"  - {f}" for f in r.findings)] if r.findings else ["findings: none"]
    lines += ["notes:", *(f"  - {n}" for n in r.notes)] if r.notes else []
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.detection.hotspots import MAX_SAMPLE_MS, MIN_SAMPLE_MS, collect_hotspots
    from cassandra_recovery.errors import ConfigError

    if not MIN_SAMPLE_MS <= args.sample_ms <= MAX_SAMPLE_MS:
        raise ConfigError(f"--sample-ms must be between {MIN_SAMPLE_MS} and {MAX_SAMPLE_MS}")
    cluster = settings.cluster(args.cluster)
    keyspace = args.keyspace or settings.domain.keyspace
    table = args.table or settings.domain.cassandra_table
    say = progress("hotspots")
    keys = None
    if args.keys_from_postgres:
        keys = _keys_from_postgres(settings, cluster.id)
        say(f"{len(keys)} keys from PostgreSQL table {settings.domain.orders_table}")
    say(f"sampling {keyspace}.{table} for {args.sample_ms} ms")
    report = collect_hotspots(cluster, keyspace, table, args.sample_ms, keys)
    print(json.dumps({"cluster": cluster.id, **report.as_dict()}) if args.json else _text(report))
    return 0
