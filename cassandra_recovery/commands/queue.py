"""`cassandra-recovery queue status|drain|replay-dead|worker`: operate the cache-update outbox."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from cassandra_recovery.commands import progress
from cassandra_recovery.commands.output import emit
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    q = sub.add_parser("queue", help="the durable cache-update queue (PostgreSQL outbox)")
    qs = q.add_subparsers(dest="queue_verb", required=True)
    for verb, text in [
        ("status", "queued, delivered, dead counts and the oldest entry's age"),
        ("drain", "deliver queued entries to Cassandra until none is left"),
        ("replay-dead", "put dead entries back in the queue"),
        ("worker", "long-lived relay: deliver entries as they come"),
    ]:
        p = qs.add_parser(verb, help=text)
        p.add_argument("--cluster", default=None)
        if verb == "drain":
            p.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.wiring import pg_parts, service_parts

    say = progress("queue")
    verb = args.queue_verb
    if verb in ("status", "replay-dead"):
        pg = pg_parts(settings, args.cluster)
        try:
            replayed = pg.outbox.replay_dead() if verb == "replay-dead" else None
            counts = pg.outbox.stats().as_dict()
        finally:
            pg.close()
        doc = {"cluster": pg.cluster_id, **counts, **({"replayed": replayed} if replayed is not None else {})}
        emit(doc, args.json)
        return 0
    parts = service_parts(settings, args.cluster)
    try:
        if verb == "drain":

            def show(stats, rep) -> None:  # type: ignore[no-untyped-def]
                say(
                    f"delivered {rep.delivered}, queued {stats.queued}, dead {stats.dead}, "
                    f"oldest {stats.oldest_queued_age_s:.1f}s"
                )

            stats, rep = parts.relay.drain(timeout_s=args.timeout, progress=None if args.json else show)
            doc = {"cluster": parts.cluster.id, "drained": stats.queued == 0, **stats.as_dict(), "run": rep.as_dict()}
            emit(doc, args.json)
            return 0 if stats.queued == 0 else 1
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        say(f"relay {parts.relay.relay_id} delivering for cluster {parts.cluster.id}; Ctrl-C to stop")
        try:
            parts.relay.serve(stop.is_set)
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        parts.close()
        sys.stdout.flush()
