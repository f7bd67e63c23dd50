"""`cassandra-recovery detector`: the long-running detector of one cluster (probes about every second)."""

from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import asdict

from cassandra_recovery.commands import progress
from cassandra_recovery.commands.output import emit
from cassandra_recovery.orchestrator import load_orchestrator
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("detector", help="watch a cluster and start the incident deployment on a Confirmed node")
    p.add_argument("--cluster", default=None)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between probe rounds (default 1)")
    p.add_argument("--metrics-port", type=int, default=9464, help="Prometheus metrics on 127.0.0.1 (0: off)")
    p.add_argument("--repair-metrics-every", type=float, default=60.0, help="seconds (0: no repair gauges)")
    p.add_argument("--no-deployment", action="store_true", help="record incidents only, start no flow run")
    p.add_argument("--rounds", type=int, default=0, help="stop after N rounds (0: run until stopped)")
    p.add_argument("--probe-timeout", type=float, default=0.5, help="seconds (default 0.5)")
    p.add_argument("--suspect-latency-ms", type=float, default=300.0)
    p.add_argument("--confirm-failures", type=int, default=3)
    p.add_argument("--recover-clean-probes", type=int, default=5)
    p.add_argument("--hint-alert", type=int, default=1000)
    p.add_argument("--hint-critical", type=int, default=10_000)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.detection.handover import TriggerHandover
    from cassandra_recovery.detection.metrics import DetectorMetrics
    from cassandra_recovery.detection.runner import DetectorLoop
    from cassandra_recovery.errors import ConfigError
    from cassandra_recovery.launch import incident_launcher
    from cassandra_recovery.logic.detector import DetectorConfig
    from cassandra_recovery.storage.facade import open_storage

    say = progress("detector")
    cluster = settings.cluster(args.cluster)
    try:
        config = DetectorConfig(
            probe_timeout_s=args.probe_timeout,
            suspect_latency_ms=args.suspect_latency_ms,
            confirm_failures=args.confirm_failures,
            recover_clean_probes=args.recover_clean_probes,
            hint_alert=args.hint_alert,
            hint_critical=args.hint_critical,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from e
    storage = open_storage(settings, max_size=2)  # refuses unless `db upgrade` has run, before anything starts
    engine = load_orchestrator(settings)
    pool = storage.pool
    metrics = DetectorMetrics(cluster.id)
    if args.metrics_port:
        metrics.serve(args.metrics_port)

    launcher = incident_launcher(
        settings, storage, None if args.no_deployment else engine, "detector", say, lambda _: cluster, warn=say
    )
    handover = TriggerHandover(launcher, cluster, say, lambda: loop.detector.snapshot())
    loop = DetectorLoop(cluster, config=config, interval_s=args.interval, on_trigger=handover, metrics=metrics)
    stop = threading.Event()
    if args.metrics_port and args.repair_metrics_every > 0:
        from cassandra_recovery.clients.cql import CqlClient
        from cassandra_recovery.scheduled.repair_metrics import RepairMetrics

        RepairMetrics(cluster.id, metrics.registry).run_every(args.repair_metrics_every, pool, CqlClient(cluster), stop)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rounds = 0
    say(f"watching {cluster.id} ({len(cluster.nodes)} nodes) every {args.interval:g}s")
    try:
        while not stop.is_set():
            for t in loop.tick():
                say(f"{t.node}: {t.old} -> {t.new} ({t.reason})")
            rounds += 1
            if args.rounds and rounds >= args.rounds:
                break
            stop.wait(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        snapshot = asdict(loop.detector.snapshot())
        loop.close()
        pool.close()
    doc = {
        "cluster": cluster.id,
        "rounds": rounds,
        "triggers": len(loop.triggers),
        "states": {n: s["state"] for n, s in snapshot["nodes"].items()},
    }
    emit(doc, args.json)
    return 0
