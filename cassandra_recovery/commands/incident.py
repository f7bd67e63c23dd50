"""`cassandra-recovery incident list|show|ack|escalate|hand-back|resolve`: the incidents as a person reads them
(PostgreSQL only), and what a person does to one, on its timeline as OS user@host."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from cassandra_recovery.commands.output import emit, table_of
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.incident.store import Incident
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import Storage


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("incident", help="list incidents, show one; acknowledge, escalate, hand back or resolve one")
    verbs = p.add_subparsers(dest="incident_command", required=True)
    ls = verbs.add_parser("list", help="open incidents, newest first (--all: closed ones too)")
    ls.add_argument("--cluster", default=None, help="only this cluster's (default: every cluster's)")
    ls.add_argument("--all", action="store_true", help="closed incidents too")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    show = verbs.add_parser("show", help="one incident: state, lease, automation level, plan, what it owns, timeline")
    show.add_argument("incident_id")
    show.add_argument("--events", type=int, default=30, help="the last N timeline events (default 30)")
    ack = verbs.add_parser("ack", help="a person owns the incident (pages stop); the automation goes on")
    ack.add_argument("incident_id")
    ack.add_argument("--note", default="", help="what you are doing about it")
    esc = verbs.add_parser("escalate", help="stop the automation acting on the incident now: people take it")
    esc.add_argument("incident_id")
    esc.add_argument("--reason", required=True, help="why (1 to 500 characters; on the timeline)")
    back = verbs.add_parser("hand-back", help="an escalated incident back to the automation (a new run assesses it)")
    back.add_argument("incident_id")
    back.add_argument("--note", required=True, help="what was done meanwhile (1 to 500 characters)")
    hold = verbs.add_parser(
        "hold-repairs", help="hold routine repair while the incident is open, even when repair age nears gc_grace"
    )
    hold.add_argument("incident_id")
    hold.add_argument("--reason", required=True, help="why (1 to 500 characters; on the timeline)")
    hold.add_argument("--release", action="store_true", help="release the hold instead")
    res = verbs.add_parser("resolve", help="close the incident and give back the policy and repair pause it applied")
    res.add_argument("incident_id")
    res.add_argument("--note", required=True, help="why it is over (1 to 500 characters)")
    res.add_argument(
        "--unverified", action="store_true", help="close it although its last verification did not converge"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.incident.store import IncidentNotFound
    from cassandra_recovery.incident_view import incident_detail, incident_rows
    from cassandra_recovery.storage.facade import open_storage

    if args.incident_command == "list" and not 1 <= args.limit <= 10_000:
        raise ConfigError("--limit must be between 1 and 10000")
    if args.incident_command == "show" and not 1 <= args.events <= 100_000:
        raise ConfigError("--events must be between 1 and 100000")
    cluster_id = settings.cluster(args.cluster).id if getattr(args, "cluster", None) else None
    storage = open_storage(settings, max_size=1)  # refuses with the command to run when the schema is old
    now = datetime.now(UTC)
    try:
        if args.incident_command == "list":
            rows = incident_rows(storage, now, cluster_id, include_closed=args.all, limit=args.limit)
            emit(rows, args.json, None if rows else lambda: "no incident" + ("" if args.all else " open"))
            return 0
        try:
            if args.incident_command == "show":
                doc = incident_detail(storage, settings, args.incident_id, now, last=args.events)
                emit(doc, args.json, lambda: _text(doc))
                return 0
            return _act(args, storage, settings)
        except IncidentNotFound as e:
            raise ConfigError(f"{e} (`cassandra-recovery incident list --all` lists them)") from e
    finally:
        storage.close()


def _act(args: argparse.Namespace, storage: Storage, settings: Settings) -> int:
    from cassandra_recovery.incident_actions import acknowledge, cli_actor, escalate, hand_back, hold_repairs, resolve

    actor, store, verb = cli_actor(), storage.incidents, args.incident_command
    doc: dict[str, Any] = {"incident_id": args.incident_id, "by": actor}
    if verb == "ack":
        doc["at"] = acknowledge(store, args.incident_id, actor, args.note).at.isoformat()
        emit(doc, args.json, lambda: f"incident {args.incident_id} acknowledged by {actor}")
        return 0
    if verb == "escalate":
        doc["state"] = escalate(store, args.incident_id, actor, args.reason).state.value
        emit(
            doc,
            args.json,
            lambda: f"incident {args.incident_id} escalated by {actor}: the automation stops acting on it",
        )
        return 0
    if verb == "hold-repairs":
        doc["at"] = hold_repairs(store, args.incident_id, actor, args.reason, args.release).at.isoformat()
        doc["held"] = not args.release
        what = "released its hold on" if args.release else "holds"
        emit(doc, args.json, lambda: f"incident {args.incident_id}: {actor} {what} routine repair")
        return 0
    if verb == "resolve":
        doc["state"] = resolve(storage, args.incident_id, actor, args.note, args.unverified).state.value
        emit(doc, args.json, lambda: f"incident {args.incident_id} resolved by {actor}")
        return 0
    inc, lease = hand_back(store, args.incident_id, actor, args.note)
    doc["state"] = inc.state.value
    status = _start_run(settings, inc, lease.token, args.note, actor, doc)
    emit(
        doc,
        args.json,
        lambda: (
            f"incident {inc.id} handed back by {actor}: "
            + (
                f"run {doc['flow_run_id']} started"
                if "flow_run_id" in doc
                else f"no run started ({doc['not_started']})"
            )
        ),
    )
    return status


def _start_run(settings: Settings, inc: Incident, token: int, note: str, actor: str, doc: dict[str, Any]) -> int:
    """The incident deployment's run for a handed-back incident; when it cannot be started now, the watchdog in a
    running `serve` starts one after `runbook.watchdog_grace_s` (exit 1: someone should look)."""
    from cassandra_recovery.commands import engine_here, progress

    trigger = {"source": "operator", "incident_id": inc.id, "reason": note.strip(), "by": actor}
    try:
        engine = engine_here(settings, progress("incident"))
        run = engine.start_incident({"cluster_id": inc.cluster_id, "trigger": trigger}, f"hand-back:{inc.id}:{token}")
    except Exception as e:  # noqa: BLE001 - the incident is handed back either way; say what did not happen
        grace = settings.runbook.watchdog_grace_s
        doc["not_started"] = f"{type(e).__name__}: {str(e)[:300]}; a running `serve` starts one within {grace:.0f}s"
        return 1
    doc["flow_run_id"] = run.id
    return 0


def _text(doc: dict[str, Any]) -> str:
    """The detail for a person: the head as field/value rows, then the timeline as a table."""
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    console = Console(file=out, width=160, soft_wrap=True)
    head = {k: v for k, v in doc.items() if k not in ("timeline", "trigger")}
    console.print(table_of(head))
    console.print(f"\ntimeline (last {len(doc['timeline'])} of {doc['events']} events)")
    console.print(table_of(doc["timeline"]))
    return out.getvalue().rstrip("\n")
