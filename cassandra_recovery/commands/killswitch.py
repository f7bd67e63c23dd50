"""`cassandra-recovery kill-switch stop|resume|status`: stop (or allow again) all automated action on a cluster."""

from __future__ import annotations

import argparse
import getpass
import json

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("kill-switch", help="stop or allow automated action on a cluster")
    p.add_argument("action", choices=["stop", "resume", "status"])
    p.add_argument("--cluster", default=None)
    p.add_argument("--reason", default=None, help="required for stop and resume")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.storage.facade import open_storage

    cluster = settings.cluster(args.cluster)
    if args.action != "status" and not (args.reason and 1 <= len(args.reason) <= 500):
        raise ConfigError("--reason (1 to 500 characters) is required to stop or resume automation")
    storage = open_storage(settings, max_size=1)
    try:
        ks = storage.kill_switch
        if args.action == "status":
            s = ks.get(cluster.id)
        else:
            s = ks.set(cluster.id, args.action == "stop", args.reason, getpass.getuser())
    finally:
        storage.close()
    doc = {"cluster": cluster.id, "stopped": bool(s and s.stopped)}
    if s is not None:
        doc |= {"reason": s.reason, "set_by": s.set_by, "since": s.since.isoformat()}
    if args.json:
        print(json.dumps(doc))
    else:
        state = "STOPPED" if doc["stopped"] else "allowed"
        print(f"automation on {cluster.id}: {state}" + (f" ({s.reason}, {s.set_by}, {s.since:%F %T %Z})" if s else ""))
    return 0
