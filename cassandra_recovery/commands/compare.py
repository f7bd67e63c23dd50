"""`cassandra-recovery compare`: the Cassandra cache against the PostgreSQL source of truth."""

from __future__ import annotations

import argparse
import json

from cassandra_recovery.commands import progress
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compare", help="compare the cache with the source of truth, chunk by token range")
    p.add_argument("--cluster", default=None)
    p.add_argument("--chunks", type=int, default=64)
    p.add_argument("--consistency", default="LOCAL_QUORUM")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra import ConsistencyLevel

    from cassandra_recovery.degraded.compare import Comparer
    from cassandra_recovery.errors import ConfigError
    from cassandra_recovery.wiring import service_parts

    if args.consistency.upper() not in ConsistencyLevel.name_to_value:
        raise ConfigError(f"unknown consistency level {args.consistency!r}")
    if not 1 <= args.chunks <= 65536:
        raise ConfigError("--chunks must be between 1 and 65536")
    parts = service_parts(settings, args.cluster)
    say = progress("compare")
    try:
        cmp = Comparer(parts.pg.pool, parts.cql, settings.domain, args.consistency)
        res = cmp.run(
            args.chunks,
            progress=None
            if args.json
            else lambda i, n: say(f"chunk {i}/{n}") if i % max(1, n // 8) == 0 or i == n else None,
        )
        doc = {"cluster": parts.cluster.id, **res.as_dict(), "queue": parts.pg.outbox.stats().as_dict()}
    finally:
        parts.close()
    if args.json:
        print(json.dumps(doc))
    else:
        print(
            f"equal={doc['equal']} rows postgres={res.rows_postgres} cassandra={res.rows_cassandra} "
            f"missing={len(res.missing)} extra={len(res.extra)} different={len(res.different)}"
        )
    return 0 if res.equal else 1
