"""`serve`, `respond`, `detect`, `assess`: the Prefect side, always against the project's own server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from cassandra_recovery.commands import engine_here, progress
from cassandra_recovery.commands.output import emit
from cassandra_recovery.orchestrator import DeploymentMissing, Orchestrator
from cassandra_recovery.settings import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help="start the Prefect server if needed and serve the project's deployments")
    s.add_argument("--limit", type=int, default=4, help="flow runs at once (default 4)")
    r = sub.add_parser("respond", help="start the incident-response deployment for a cluster and follow the run")
    r.add_argument("--cluster", default=None)
    r.add_argument("--dry-run", action="store_true", help="plan and report without acting")
    r.add_argument("--timeout", type=float, default=900.0)
    for verb, text in [
        ("detect", "observe every node once: probes, peers' views, hints"),
        ("assess", "classify the failure and plan the recovery"),
    ]:
        p = sub.add_parser(verb, help=text)
        p.add_argument("--cluster", default=None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    say = progress(args.command)
    # serve's flows need the core tables (the domain's are checked where they are used); detect and assess work
    # without PostgreSQL, and refuse an old schema when they meet one.
    if args.command == "serve":
        from cassandra_recovery.storage.migrate import require_current
        from cassandra_recovery.storage.names import CORE, SchemaNames

        require_current(settings.postgres_conninfo(), SchemaNames.from_settings(settings), tracks=(CORE,))
    engine = engine_here(settings, say)
    cluster_id = settings.cluster(getattr(args, "cluster", None)).id
    if args.command == "serve":
        say(f"serving deployments against {settings.prefect.api_url}; Ctrl-C to stop")
        engine.serve(limit=args.limit)
        return 0
    if args.command == "respond":
        return _respond(engine, cluster_id, args, say)
    result = engine.run_detect(cluster_id) if args.command == "detect" else engine.run_assess(cluster_id)
    emit(result, args.json)
    return 0


def _respond(engine: Orchestrator, cluster_id: str, args: argparse.Namespace, say: Callable[[str], None]) -> int:
    try:
        run = engine.start_incident({"cluster_id": cluster_id, "dry_run": args.dry_run})
    except DeploymentMissing as e:
        print(
            f"error: {e}; start `cassandra-recovery serve` (it registers and runs the deployments), then try again",
            file=sys.stderr,
        )
        return 3
    say(f"flow run {run.name} ({run.id}) scheduled; a `cassandra-recovery serve` process runs it")
    end = engine.follow(run, args.timeout, say)
    if end is None:
        say("still running; follow it in the Prefect UI")
        return 1
    doc: dict[str, Any] = {"cluster": cluster_id, "flow_run_id": run.id, "state": end.state}
    if end.state == "COMPLETED":
        doc["result"] = end.result
    else:
        doc["message"] = end.message
    emit(doc, args.json)
    return 0 if end.state == "COMPLETED" else 1
