"""Gathers what the assessment decides from: ring, replication, schema, hint window, gc grace, restarts."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.logic.assessment import AppImpact, AssessmentInput, NodeObservation
from cassandra_recovery.logic.durations import parse_duration_ms
from cassandra_recovery.logic.replication import Replication, RingToken, replication_from
from cassandra_recovery.parsers.describecluster import parse_describecluster
from cassandra_recovery.settings import ClusterConfig

SYSTEM_KEYSPACES = ("system", "system_schema", "system_views", "system_virtual_schema")


def ring(cql: CqlClient, observer: str) -> list[RingToken]:
    """Every token of every node, with datacenter and rack, as the observer's system tables know them."""
    out: list[RingToken] = []
    local = cql.execute_on(observer, "SELECT tokens, data_center, rack, broadcast_address FROM system.local")[0]
    out += [
        RingToken(int(t), str(local["broadcast_address"]), local["data_center"], local["rack"]) for t in local["tokens"]
    ]
    for p in cql.execute_on(observer, "SELECT peer, tokens, data_center, rack FROM system.peers_v2"):
        out += [RingToken(int(t), str(p["peer"]), p["data_center"], p["rack"]) for t in (p["tokens"] or ())]
    return sorted(out)


def min_gc_grace_s(cql: CqlClient, observer: str) -> float:
    rows = cql.execute_on(observer, "SELECT keyspace_name, gc_grace_seconds FROM system_schema.tables")
    user = [r["gc_grace_seconds"] for r in rows if not str(r["keyspace_name"]).startswith("system")]
    return float(min(user)) if user else float("inf")


def gather(
    cluster: ClusterConfig,
    detected: Mapping[str, Any],
    now: datetime,
    outage_started: datetime,
    jmx: dict[str, bool | None],
    baseline: dict[str, Any] | None = None,
    known_condition: str | None = None,
    app: AppImpact | None = None,
    reported: Collection[str] = (),
) -> AssessmentInput:
    """AssessmentInput from a `detect` result plus a few reads pinned to a reachable node; `reported` names the
    nodes (names or addresses) this incident's triggers reported down, which may be back by now."""
    reachable = [n for n, d in detected["nodes"].items() if d["probe"]["ok"]]
    if not reachable:
        raise RuntimeError("no node answers the client: nothing to read the ring or schema from")
    observer = cluster.node(reachable[0])
    nt = Nodetool(cluster)
    desc = parse_describecluster(nt.output(observer.name, "describecluster", timeout_s=30))
    keyspaces: dict[str, Replication] = {}
    for name, ks in desc.keyspaces.items():
        rep = replication_from(ks.strategy, ks.options)
        if rep is not None and name not in SYSTEM_KEYSPACES:
            keyspaces[name] = rep
    # Every read below is pinned to the observer: connect to it alone, never waiting on a hung node's pool.
    with CqlClient(cluster, request_timeout_s=5.0, hosts=[observer.address]) as cql:
        tokens = ring(cql, observer.address)
        gc_grace = min_gc_grace_s(cql, observer.address)
        settings = cql.settings(observer.address, ["max_hint_window", "max_hints_size_per_host", "commitlog_sync"])
        gossip = cql.execute_on(observer.address, "SELECT address, generation FROM system_views.gossip_info")
    window_s = parse_duration_ms(settings["max_hint_window"]) / 1000
    size_limit = settings.get("max_hints_size_per_host", "0B")
    # A coordinator restarted during the outage lost its in-memory view of what it hinted.
    generations = {str(g["address"]): int(g["generation"] or 0) for g in gossip}
    restarted = any(generations.get(cluster.node(n).address, 0) > outage_started.timestamp() for n in reachable)
    counters = detected.get("counters") or {}
    nodes = []
    for name, d in detected["nodes"].items():
        target = f"{d['address']}:7000"
        now_dropped = sum(int((c.get("hints") or {}).get("not_stored", {}).get(target, 0)) for c in counters.values())
        base = sum(
            int(((baseline or {}).get(k) or {}).get("hints", {}).get("not_stored", {}).get(target, 0)) for k in counters
        )
        down = not d["probe"]["ok"] or d["peers_seeing_down"] > 0
        returned = not down and (name in reported or d["address"] in reported)
        generation = generations.get(d["address"])
        nodes.append(
            NodeObservation(
                address=d["address"],
                client_reachable=bool(d["probe"]["ok"]),
                client_error=d["probe"]["error"],
                peers_seeing_down=d["peers_seeing_down"],
                peers_total=d["peers_total"],
                jmx_answers=jmx.get(name),
                down_since=outage_started if down or returned else None,
                not_stored_grew=(now_dropped > base) if baseline is not None else now_dropped > 0,
                hints_over_size_limit=False if size_limit in ("0B", "0", "0MiB") else None,
                returned=returned,
                # Back, but since when is not known: from now on, its schema may lag until it has pulled it.
                back_since=now if returned else None,
                restarted=None if not generation else generation > outage_started.timestamp(),
            )
        )
    return AssessmentInput(
        now=now,
        ring=tokens,
        keyspaces=keyspaces,
        local_dc=cluster.local_datacenter,
        nodes=tuple(nodes),
        schema_versions=desc.schema_versions,
        max_hint_window_s=window_s,
        min_gc_grace_s=gc_grace,
        coordinator_restarted=restarted,
        known_condition=known_condition,
        app=app or AppImpact(),
        commitlog_periodic=None if "commitlog_sync" not in settings else settings["commitlog_sync"] == "periodic",
    )
