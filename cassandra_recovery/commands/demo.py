"""`cassandra-recovery demo`: the whole pipeline on the lab, one demonstration incident from a real partition
to the verification verdict, watched in the Prefect UI."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import Any

from cassandra_recovery.commands import engine_here, progress
from cassandra_recovery.errors import ConfigError, LabError
from cassandra_recovery.logic.incident_states import TERMINAL, IncidentState
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="lab + PostgreSQL + Prefect + pipeline; a partition handled end to end")
    p.add_argument("--node", default="node3", help="the node to partition (default node3)")
    p.add_argument("--outage", type=float, default=30.0, help="seconds the partition lasts (default 30)")
    p.add_argument("--rate", type=float, default=30.0, help="workload operations per second during the demo")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the incident to close")
    p.add_argument("--keep", action="store_true", help="leave the pipeline's processes running afterwards")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.clients.child_env import child_env, own_config
    from cassandra_recovery.commands.teardown import print_running
    from cassandra_recovery.degraded.workload import WorkloadSpec, run_workload
    from cassandra_recovery.lab.cluster import Lab
    from cassandra_recovery.lab.layout import find_node, plan_lab
    from cassandra_recovery.lab.postgres import ensure_postgres
    from cassandra_recovery.lab.prefect_server import client_env, prefect_home
    from cassandra_recovery.lab.stack import Stack
    from cassandra_recovery.storage.facade import open_storage
    from cassandra_recovery.storage.migrate import upgrade_for
    from cassandra_recovery.wiring import service_parts

    if not 5 <= args.outage <= 3600 or args.rate <= 0 or args.timeout <= 0:
        raise ConfigError("--outage must be 5..3600 s; --rate and --timeout positive")
    say = progress("demo")
    logging.getLogger("cassandra").setLevel(logging.ERROR)  # the driver's reconnect chatter while node3 is away
    lab = Lab(settings.lab, progress=say)
    # Checked against the topology about to be created (the lab may not exist yet), before anything starts.
    node = find_node(plan_lab(user_prefix=settings.lab.user_prefix, offset=settings.lab.address_offset), args.node)
    lab.up()
    ensure_postgres(settings)
    engine = engine_here(settings, say)
    # The demo's own order tables, emptied at the start, so earlier runs (or a lab restarted without its data
    # while PostgreSQL kept its rows) cannot make the verdict about anything but this incident.
    settings = settings.model_copy(update={"domain": settings.domain.model_copy(update=DEMO_DOMAIN)})
    # The demo's processes are this tool: its settings (secrets included) and Prefect's client settings.
    demo = {f"CASSANDRA_RECOVERY_DOMAIN__{k.upper()}": v for k, v in DEMO_DOMAIN.items()}
    env = child_env(prefixes=["PREFECT_"], extra={**own_config(), **client_env(settings), **demo})
    # The follow-up verification runs a minute after recovery (production: a day).
    env.setdefault("CASSANDRA_RECOVERY_VERIFICATION__FOLLOW_UP_S", "60")
    stack = Stack(settings.lab.base_dir / "demo", env, progress=say)
    upgrade_for(settings)  # the demo's own names: its processes check the schema at start
    storage = open_storage(settings, max_size=2)
    store = storage.incidents
    parts = service_parts(settings)
    parts.empty()
    try:
        stack.start(deployment_ready=engine.incident_ready, cluster=settings.default_cluster)
        ui = settings.prefect.api_url.removesuffix("/api")
        say(f"Prefect UI: {ui}  (user:password in {prefect_home(settings) / 'api-auth'})")
        run_workload(parts.service, WorkloadSpec(rate=200, operations=500, keys=500, read_ratio=0.0), parts.relay)
        spec = WorkloadSpec(rate=args.rate, duration_s=args.outage + 20, keys=500, read_ratio=0.7)
        load = threading.Thread(target=run_workload, args=(parts.service, spec), kwargs={"relay": parts.relay})
        load.start()
        before = store.open_for(settings.default_cluster)
        say(f"partition: {node.name} ({node.address}) leaves the cluster for {args.outage:.0f}s (process alive)")
        lab.partition(node.name)
        incident = _wait(lambda: _new_incident(store, settings.default_cluster, before), 120, "an incident to open")
        say(f"incident {incident.id} opened; watch it at {ui}/runs")
        time.sleep(args.outage)
        lab.heal(node.name)
        say(f"partition healed; the incident runs on to verification (up to {args.timeout:.0f}s)")
        load.join()
        closed = _wait(lambda: _closed(store, incident.id), args.timeout, f"incident {incident.id} to be verified")
        if closed.state is IncidentState.MONITORING:  # the follow-up verification closes it a minute later
            say("verified; monitoring until the follow-up verification")
            closed = _wait(
                lambda: _closed(store, incident.id, final=True), args.timeout, f"incident {incident.id} to close"
            )
        verdict = [e.data for e in store.events(incident.id) if e.kind == "verified"]
        last: dict[str, Any] = verdict[-1] if verdict else {}
        say(f"incident {incident.id}: {closed.state.value}")
        for v in verdict:  # the pass that verified the incident, when it read only what the outage changed
            scope = v.get("scope") or {}
            if scope.get("scoped"):
                say(f"outage-scoped proof ({v.get('pass')}): {v.get('verdict')}, {scope.get('changed_keys')} changed"
                    f" keys in {scope.get('ranges')} ranges, {v.get('rows_compared')} row copies compared")  # fmt: skip
        print(f"verification verdict: {last.get('verdict', 'none')} ({last.get('rows_compared', 0)} rows compared,"
              f" {last.get('mismatches', 0)} mismatching chunks); post-mortem: {ui}/artifacts")  # fmt: skip
        return 0 if last.get("verdict") == "converged" else 1
    finally:
        parts.close()
        storage.close()
        if not args.keep:
            stack.stop()
        print_running(settings)


DEMO_DOMAIN = {"keyspace": "shop_demo", "orders_table": "orders_demo", "outbox_table": "outbox_demo",
               "policy_table": "policy_demo"}  # fmt: skip


def _new_incident(store: Any, cluster_id: str, before: Any) -> Any:
    inc = store.open_for(cluster_id)
    return inc if inc is not None and (before is None or inc.id != before.id) else None


def _closed(store: Any, incident_id: str, final: bool = False) -> Any:
    inc = store.get(incident_id)
    done = TERMINAL if final else TERMINAL | {IncidentState.MONITORING}
    return inc if inc.state in done else None


def _wait(cond: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (got := cond()):
        if time.monotonic() > deadline:
            raise LabError(f"demo: gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(1)
    return got
