"""`cassandra-recovery regions`: a region's own detector (`watch --region DC`, deployed in that region, publishing
its view to PostgreSQL) and the regions' views put together (`status`: split, one-way, dead datacenter...)."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import threading
from dataclasses import asdict

from cassandra_recovery.commands import progress
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("regions", help="per-datacenter detectors and the regions' views together")
    rs = p.add_subparsers(dest="regions_verb", required=True)
    w = rs.add_parser("watch", help="run this region's detector: observe it and publish its view")
    w.add_argument("--region", required=True, help="the datacenter this detector runs in")
    w.add_argument("--cluster", default=None)
    w.add_argument("--every", type=float, default=3.0, help="seconds between observations (default 3)")
    w.add_argument("--rounds", type=int, default=0, help="stop after N observations (0: until stopped)")
    s = rs.add_parser("status", help="the regions' views together (published ones, the rest observed from here)")
    s.add_argument("--cluster", default=None)
    s.add_argument("--max-age", type=float, default=30.0, help="a published view older than this is no report")
    s.add_argument("--only-published", action="store_true", help="never observe a region from here")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.detection.regions import datacenters, dc_of, observe_region, views_for

    cluster = settings.cluster(args.cluster)
    dcs = datacenters(cluster)
    if args.regions_verb == "watch" and args.region not in dcs:
        raise ConfigError(f"cluster {cluster.id} has no datacenter {args.region!r} (it has {', '.join(dcs)})")
    if args.regions_verb == "watch" and args.every <= 0:
        raise ConfigError("--every must be > 0")
    from cassandra_recovery.storage.facade import open_storage

    storage = open_storage(settings, max_size=1)
    try:
        store = storage.region_views
        if args.regions_verb == "watch":
            say = progress(f"regions:{args.region}")
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            reporter = f"{socket.gethostname()}/{args.region}"
            n = 0
            while not stop.is_set() and (args.rounds == 0 or n < args.rounds):
                view = observe_region(cluster, args.region)
                store.publish(cluster.id, view, reporter)
                n += 1
                down = sorted(a for a, g in view.gossip.items() if g == "D")
                say(f"round {n}: own nodes answering {sum(view.probes.values())}/{len(view.probes)}, seen down {down}")
                stop.wait(args.every)
            return 0
        views, origin = views_for(cluster, store, args.max_age, observe_missing=not args.only_published)
        from cassandra_recovery.logic.regions import classify_regions

        verdict = classify_regions(views, dc_of(cluster))
        doc = {"cluster": cluster.id, "verdict": verdict.as_dict(), "origin": origin,
               "views": {dc: asdict(v) if v else None for dc, v in views.items()}}  # fmt: skip
        if args.json:
            print(json.dumps(doc, default=str))
        else:
            print(f"{cluster.id}: {verdict.kind.value}; sides {verdict.sides}")
            for r in verdict.reasons:
                print(f"  - {r}")
            for dc, o in origin.items():
                print(f"  {dc}: {o}")
        return 0
    finally:
        storage.close()
