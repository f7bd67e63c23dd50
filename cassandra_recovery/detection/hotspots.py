"""Collect a hot-spot report: nodetool status/toppartitions/tablehistograms on one live node, ring from CQL."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.probe import probe_node
from cassandra_recovery.errors import ConfigError, NodeUnreachableError
from cassandra_recovery.logic.hotspots import HotspotReport, Thresholds, build_report
from cassandra_recovery.parsers.status import StatusRow, parse_status
from cassandra_recovery.parsers.tablehistograms import NO_SSTABLES, parse_tablehistograms
from cassandra_recovery.parsers.toppartitions import parse_toppartitions
from cassandra_recovery.settings import ClusterConfig, NodeAccess

log = logging.getLogger(__name__)

MIN_SAMPLE_MS = 100
MAX_SAMPLE_MS = 600_000


def check_table(cql: CqlClient, keyspace: str, table: str) -> None:
    """ConfigError unless the table exists in the driver's schema metadata; names what does exist."""
    keyspaces = cql.session.cluster.metadata.keyspaces
    if keyspace not in keyspaces:
        user = sorted(k for k in keyspaces if not k.startswith("system"))
        raise ConfigError(
            f"unknown keyspace {keyspace!r} in cluster {cql.config.id}; known keyspaces: "
            f"{', '.join(user) or '(none)'} (system keyspaces not listed)"
        )
    tables = keyspaces[keyspace].tables
    if table not in tables:
        raise ConfigError(
            f"unknown table {table!r} in keyspace {keyspace}; known tables: {', '.join(sorted(tables)) or '(none)'}"
        )


def ring_tokens(cql: CqlClient, address: str) -> list[tuple[int, str]]:
    """(token, broadcast address) of every node, as the node at `address` sees the ring."""
    ring: list[tuple[int, str]] = []
    local = cql.execute_on(address, "SELECT broadcast_address, tokens FROM system.local")
    peers = cql.execute_on(address, "SELECT peer, tokens FROM system.peers_v2")
    for row in local:
        ring += [(int(t), str(row["broadcast_address"])) for t in row["tokens"] or ()]
    for row in peers:
        ring += [(int(t), str(row["peer"])) for t in row["tokens"] or ()]  # None while a peer is joining
    if not ring:
        raise NodeUnreachableError(f"{address} returned no ring tokens from system.local/system.peers_v2")
    return ring


def _first_live(cluster: ClusterConfig) -> NodeAccess:
    errors = []
    for node in cluster.nodes:
        res = probe_node(node.address, port=cluster.port, timeout_s=2.0)
        if res.ok:
            return node
        errors.append(f"{node.name} ({node.address}): {res.error}")
    raise NodeUnreachableError(f"no node of cluster {cluster.id} answers: {'; '.join(errors)}")


def _histograms_text(nt: Nodetool, node: NodeAccess, keyspace: str, table: str) -> str:
    proc = nt.run(node, "tablehistograms", keyspace, table)
    # 5.0 prints the no-SSTables line on stdout; older releases printed it on stderr.
    if NO_SSTABLES in proc.stderr and NO_SSTABLES not in proc.stdout:
        return f"{NO_SSTABLES}\n{proc.stdout}"
    return proc.stdout


def collect_hotspots(
    cluster: ClusterConfig,
    keyspace: str,
    table: str,
    sample_ms: int,
    keys: Sequence[str] | None,
    *,
    cql: CqlClient | None = None,
    nodetool: Nodetool | None = None,
    thresholds: Thresholds | None = None,
) -> HotspotReport:
    """Sample `keyspace.table` for `sample_ms` on one live node (blocks that long) and build the report.

    `keys`, when given, are workload partition keys whose spread over the primary-range owners is reported.
    A `cql` client passed in is left open; one made here is closed.
    """
    if not MIN_SAMPLE_MS <= sample_ms <= MAX_SAMPLE_MS:
        raise ConfigError(f"sample duration must be {MIN_SAMPLE_MS}..{MAX_SAMPLE_MS} ms, got {sample_ms}")
    client = cql or CqlClient(cluster)
    try:
        check_table(client, keyspace, table)
        nt = nodetool or Nodetool(cluster)
        node = _first_live(cluster)
        status: list[StatusRow] = parse_status(nt.output(node, "status", keyspace))
        log.info("sampling %s.%s on %s for %d ms", keyspace, table, node.name, sample_ms)
        top = parse_toppartitions(
            nt.output(
                node,
                "toppartitions",
                keyspace,
                table,
                str(sample_ms),
                timeout_s=cluster.nodetool_timeout_s + sample_ms / 1000,
            )
        )
        hist = parse_tablehistograms(_histograms_text(nt, node, keyspace, table))
        ring = ring_tokens(client, node.address)
    finally:
        if cql is None:
            client.close()
    return build_report(
        keyspace=keyspace,
        table=table,
        sampled_node=node.address,
        sample_ms=sample_ms,
        status=status,
        top=top,
        histograms=hist,
        ring=ring,
        keys=keys,
        thresholds=thresholds,
    )
