"""The repair scope read from the live cluster: ranges the target nodes replicate, per keyspace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cassandra_recovery.assessment.inputs import SYSTEM_KEYSPACES, ring
from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.replication import TokenRange, ranges_replicated_by, replication_from, token_ranges
from cassandra_recovery.parsers.describecluster import parse_describecluster
from cassandra_recovery.settings import ClusterConfig


def current_scope(
    cluster: ClusterConfig, cql: CqlClient, observer: str, targets: Sequence[str], keyspaces: Sequence[str] | None
) -> list[tuple[str, TokenRange]]:
    """(keyspace, range) for every range a target replicates (every range when `targets` is empty)."""
    desc = parse_describecluster(Nodetool(cluster).output(observer, "describecluster", timeout_s=30))
    chosen = set(keyspaces) if keyspaces else None
    if chosen is not None and (unknown := chosen - set(desc.keyspaces)):
        raise ConfigError(f"unknown keyspace(s) {sorted(unknown)}; the cluster has {sorted(desc.keyspaces)}")
    tokens = ring(cql, cluster.node(observer).address)
    out: list[tuple[str, TokenRange]] = []
    for name, ks in sorted(desc.keyspaces.items()):
        rep = replication_from(ks.strategy, ks.options)
        if rep is None or name in SYSTEM_KEYSPACES or (chosen is not None and name not in chosen):
            continue
        ranges = token_ranges(tokens, rep)
        out += [(name, r) for r in (ranges_replicated_by(ranges, targets) if targets else ranges)]
    return out


def scope_from_plan(
    plan_scope: Sequence[Mapping[str, Any]], keyspaces: Sequence[str] | None
) -> list[tuple[str, TokenRange]]:
    """The assessment's stored scope ([{keyspace, ranges: [{start, end, replicas}]}]) as (keyspace, range) pairs."""
    out = []
    for entry in plan_scope:
        if keyspaces and entry["keyspace"] not in keyspaces:
            continue
        for r in entry["ranges"]:
            out.append((str(entry["keyspace"]), TokenRange(int(r["start"]), int(r["end"]), tuple(r["replicas"]))))
    return out
