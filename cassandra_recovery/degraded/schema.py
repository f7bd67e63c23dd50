"""Schema of the example domain in Cassandra (the cache); its PostgreSQL tables are made by the migrations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.settings import DomainConfig

DC_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SPECULATIVE_RETRY = "50ms"


def replication_by_dc(cfg: DomainConfig, nodes_by_dc: Mapping[str, int]) -> dict[str, int]:
    """The settings' replication factor in every datacenter, capped at the nodes it has (a region keeps
    serving LOCAL_* reads and writes on its own replicas during a split)."""
    return {dc: min(cfg.replication_factor, n) for dc, n in sorted(nodes_by_dc.items()) if n > 0}


def schema_in_place(metadata: Any, cfg: DomainConfig) -> bool:
    """Whether the driver's schema metadata already shows the cache table as ensure_cassandra_schema makes it."""
    keyspace = metadata.keyspaces.get(cfg.keyspace)
    table = keyspace.tables.get(cfg.cassandra_table) if keyspace is not None else None
    return table is not None and table.options.get("speculative_retry") == SPECULATIVE_RETRY


def ensure_cassandra_schema(cql: CqlClient, cfg: DomainConfig, nodes_by_dc: Mapping[str, int]) -> None:
    """Keyspace (NetworkTopologyStrategy, RF per datacenter) and cache table; names validated by settings. No DDL
    (and no schema agreement wait, which costs its whole timeout while a node is frozen) when they are in place."""
    if schema_in_place(cql.session.cluster.metadata, cfg):
        return
    factors = replication_by_dc(cfg, nodes_by_dc)
    for dc in factors:
        if not DC_NAME.fullmatch(dc):
            raise ValueError(f"datacenter name {dc!r} cannot be used in a replication map")
    dcs = ", ".join(f"'{dc}': {rf}" for dc, rf in factors.items())
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {cfg.keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', {dcs}}}",
        timeout_s=30,
    )
    cql.execute(
        f"CREATE TABLE IF NOT EXISTS {cfg.keyspace}.{cfg.cassandra_table} ("
        "id text PRIMARY KEY, customer text, status text, amount_cents bigint, updated_at timestamp, version bigint)",
        timeout_s=30,
    )
    # A fixed coordinator-side speculative retry: with the default '99p', a table with few samples waits up
    # to the read timeout for a hung replica that gossip has not convicted yet (seconds), so every
    # QUORUM read involving it times out on the client. 50 ms asks the next replica instead.
    rows = cql.execute(
        "SELECT speculative_retry FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
        (cfg.keyspace, cfg.cassandra_table),
    )
    if rows and rows[0]["speculative_retry"] != SPECULATIVE_RETRY:
        cql.execute(
            f"ALTER TABLE {cfg.keyspace}.{cfg.cassandra_table} WITH speculative_retry = '{SPECULATIVE_RETRY}'",
            timeout_s=30,
        )
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=30)
