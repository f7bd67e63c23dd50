"""`cassandra-recovery silence`: record a maintenance window; outages inside it are reported, not acted on."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime, timedelta

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.durations import parse_duration_ms
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("silence", help="record a maintenance window for a cluster")
    p.add_argument("--cluster", default=None)
    p.add_argument("--for", dest="duration", required=True, help="e.g. 30m, 2h")
    p.add_argument("--reason", required=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.storage.facade import open_storage

    try:
        duration = timedelta(milliseconds=parse_duration_ms(args.duration))
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if not 1 <= len(args.reason) <= 500:
        raise ConfigError("--reason must be 1 to 500 characters")
    cluster = settings.cluster(args.cluster)
    storage = open_storage(settings, max_size=1)
    try:
        w = storage.silences.add(cluster.id, datetime.now(UTC), duration, args.reason, getpass.getuser())
    finally:
        storage.close()
    doc = {"cluster": cluster.id, "id": w.id, "until": w.ends_at.isoformat(), "reason": w.reason}
    print(json.dumps(doc) if args.json else f"maintenance window #{w.id} on {cluster.id} until {w.ends_at:%F %T %Z}")
    return 0
