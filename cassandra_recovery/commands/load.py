"""`cassandra-recovery lab load`: drive the order service against a cluster and report where reads came from."""

from __future__ import annotations

import argparse
from typing import Any

from cassandra_recovery.commands import Progress, progress
from cassandra_recovery.commands.output import emit
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.progress import counted
from cassandra_recovery.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default=None)
    p.add_argument("--rate", type=float, default=100.0, help="operations per second (default 100)")
    p.add_argument("--duration", type=float, default=None, help="seconds (default 10 unless --operations)")
    p.add_argument("--operations", type=int, default=None)
    p.add_argument("--keys", type=int, default=500, help="distinct order ids (default 500)")
    p.add_argument("--read-ratio", type=float, default=0.8)
    p.add_argument("--consistency", default=None, help="read consistency level (default from settings)")
    p.add_argument("--no-relay", action="store_true", help="do not deliver the queue while running")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.degraded.workload import WorkloadSpec, run_workload
    from cassandra_recovery.wiring import service_parts

    try:
        duration = args.duration if args.duration is not None or args.operations else 10.0
        spec = WorkloadSpec(
            rate=args.rate, duration_s=duration, operations=args.operations, keys=args.keys, read_ratio=args.read_ratio
        )
        if args.consistency:
            settings = settings.model_copy(
                update={"domain": settings.domain.model_copy(update={"read_consistency": args.consistency})}
            )
            type(settings.domain).model_validate(settings.domain.model_dump())
    except ValueError as e:
        raise ConfigError(str(e)) from e
    say = progress("load")
    planned = spec.operations if spec.operations is not None else int(spec.rate * (spec.duration_s or 0)) or None
    # The service must not wait for Cassandra: writes go to PostgreSQL, reads fall back to it until the cache
    # connects in the background (every node down or frozen included).
    parts = service_parts(settings, args.cluster, background=True)
    try:
        rep = run_workload(
            parts.service,
            spec,
            relay=None if args.no_relay else parts.relay,
            progress=None if args.json else lambda r: _tell(say, r, planned),
        )
        # Deliver what the last moments queued, so no stale entry is left behind; with Cassandra away the queue
        # keeps it for the relay (`queue drain`, the incident's recovery) instead of waiting here.
        connected = parts.cache.connected
        if connected and not args.no_relay:
            parts.relay.deliver_committed_before(parts.pg.outbox.watermark(), timeout_s=30)
        queued = parts.pg.outbox.stats().queued
    finally:
        say.close()
        parts.close()
    doc = {"cluster": parts.cluster.id, **rep.as_dict(), "cache_connected": connected, "queued": queued}
    emit(doc, args.json)
    return 0


def _tell(say: Progress, r: Any, planned: int | None) -> None:
    """A second's progress: a bar of operations done when their number is known, and the running figures."""
    line = (f"{r.duration_s:5.1f}s writes={r.writes} reads={r.reads} cassandra={r.cassandra_share:.1%} "
            f"errors={r.write_errors + r.read_errors}")  # fmt: skip
    if planned:
        counted(say, "load: operations", r.writes + r.reads, planned, line=line)
    else:
        say(line)
