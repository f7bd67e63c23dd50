"""`serve`, `respond`, `detect`, `assess`: the Prefect side, always against the project's own server."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from cassandra_recovery.commands import progress
from cassandra_recovery.settings import Settings

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help="start the Prefect server if needed and serve the project's deployments")
    s.add_argument("--limit", type=int, default=4, help="flow runs at once (default 4)")
    r = sub.add_parser("respond", help="start the incident-response deployment for a cluster and follow the run")
    r.add_argument("--cluster", default=None)
    r.add_argument("--dry-run", action="store_true", help="plan and report without acting")
    r.add_argument("--timeout", type=float, default=900.0)
    r.add_argument("--json", action="store_true")
    for verb, text in [
        ("detect", "observe every node once: probes, peers' views, hints"),
        ("assess", "classify the failure and plan the recovery"),
    ]:
        p = sub.add_parser(verb, help=text)
        p.add_argument("--cluster", default=None)
        p.add_argument("--json", action="store_true")


def use_project_server(settings: Settings) -> None:
    """Point Prefect at the project's server before prefect is imported anywhere in this process."""
    from cassandra_recovery.lab.prefect_server import client_env

    os.environ.update(client_env(settings))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.lab.prefect_server import ensure_prefect_server

    say = progress(args.command)
    # serve's flows need the core tables (the domain's are checked where they are used); detect and assess work
    # without PostgreSQL, and refuse an old schema when they meet one.
    if args.command == "serve":
        from cassandra_recovery.storage.migrate import require_current
        from cassandra_recovery.storage.names import CORE, SchemaNames

        require_current(settings.postgres_conninfo(), SchemaNames.from_settings(settings), tracks=(CORE,))
    use_project_server(settings)
    ensure_prefect_server(settings, progress=say)
    cluster_id = settings.cluster(getattr(args, "cluster", None)).id
    if args.command == "serve":
        from deployments.serve import serve_all

        say(f"serving deployments against {settings.prefect.api_url}; Ctrl-C to stop")
        serve_all(limit=args.limit)
        return 0
    if args.command == "respond":
        return _respond(cluster_id, args, say)
    if args.command == "detect":
        from flows.detect import detect

        result: Any = detect(cluster_id=cluster_id)
    else:
        from flows.assess import assess

        result = assess(cluster_id=cluster_id)
    print(json.dumps(result, default=str) if args.json else json.dumps(result, indent=2, default=str))
    return 0


def _respond(cluster_id: str, args: argparse.Namespace, say: Any) -> int:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    from deployments.serve import INCIDENT_DEPLOYMENT

    try:
        run: Any = run_deployment(
            INCIDENT_DEPLOYMENT, parameters={"cluster_id": cluster_id, "dry_run": args.dry_run}, timeout=0
        )
    except ObjectNotFound:
        print(
            f"error: the deployment {INCIDENT_DEPLOYMENT} is not registered on the Prefect server;"
            " start `cassandra-recovery serve` (it registers and runs the deployments), then try again",
            file=sys.stderr,
        )
        return 3
    say(f"flow run {run.name} ({run.id}) scheduled; a `cassandra-recovery serve` process runs it")
    state = _follow(run.id, args.timeout, say)
    doc: dict[str, Any] = {"cluster": cluster_id, "flow_run_id": str(run.id), "state": state.type.value}
    if state.type.value == "COMPLETED":
        doc["result"] = state.result()
    else:
        doc["message"] = state.message
    print(json.dumps(doc, default=str) if args.json else json.dumps(doc, indent=2, default=str))
    return 0 if state.type.value == "COMPLETED" else 1


def _follow(flow_run_id: Any, timeout_s: float, say: Any) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    last = None
    with get_client(sync_client=True) as client:
        while True:
            fr = client.read_flow_run(flow_run_id)
            state = fr.state
            if state is not None and state.name != last:
                last = state.name
                say(f"state: {state.name}" + (f" ({state.message})" if state.message else ""))
            if state is not None and state.type.value in TERMINAL:
                return state
            if time.monotonic() > deadline:
                say("still running; follow it in the Prefect UI")
                sys.exit(1)
            time.sleep(1)
