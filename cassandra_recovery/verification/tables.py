"""What verification reads of a table: its columns, the key and hash of a row, a server-side summary."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cassandra_recovery.clients.cql import CqlClient, table_name
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.checksum import SEP
from cassandra_recovery.settings import DomainConfig

Row = Sequence[Any]  # one row as read for verification: its values in the order of TableSpec.columns (a tuple)
_md5 = hashlib.md5  # a checksum of rows, not security
_from_bytes = int.from_bytes


@dataclass(frozen=True)
class TableSpec:
    keyspace: str
    table: str
    partition_key: tuple[str, ...]
    columns: tuple[str, ...]  # selected, partition key first
    key_of: Callable[[Row], str]
    hash_of: Callable[[Row], int]
    # Server-side summary of a range: `n` = row count, `s` = a bigint sum (wraps modulo 2^64 like Java's long)
    aggregate: str
    has_truth: bool  # the PostgreSQL source of truth holds this table (the orders domain)

    @property
    def name(self) -> str:
        return table_name(self.keyspace, self.table)

    def token_expr(self) -> str:
        return f"token({', '.join(self.partition_key)})"


def _order_hash(r: Row) -> int:
    """logic.checksum's row_hash(canonical(...)) of a row read in `orders_spec`'s column order, inlined: it runs
    once per row copy, and the call chain cost about a third of a full pass's client time (a unit test holds the
    two equal)."""
    id_, customer, status, amount_cents, updated_ms, version = r
    text = f"{id_}{SEP}{customer}{SEP}{status}{SEP}{amount_cents}{SEP}{updated_ms}{SEP}{version}"
    return _from_bytes(_md5(text.encode()).digest()[:8], "big", signed=True)


def orders_spec(cfg: DomainConfig) -> TableSpec:
    """The domain table: rows hash exactly as PostgreSQL's side does, so the two compare directly."""
    return TableSpec(
        keyspace=cfg.keyspace,
        table=cfg.cassandra_table,
        partition_key=("id",),
        # The write time as the server's epoch milliseconds (exact, what the hash takes): decoding a timestamp
        # into a datetime and back cost the client more than the rest of the row.
        columns=("id", "customer", "status", "amount_cents", "toUnixTimestamp(updated_at) AS updated_ms", "version"),
        key_of=lambda r: str(r[0]),
        hash_of=_order_hash,
        aggregate="count(*) AS n, sum(version) AS s",
        has_truth=True,
    )


def generic_spec(cql: CqlClient, keyspace: str, table: str) -> TableSpec:
    """Any table, from its schema: replicas are compared with one another (no source of truth to compare to)."""
    name = table_name(keyspace, table)  # validates both identifiers
    rows = cql.execute(
        "SELECT column_name, kind, position FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
        (keyspace, table),
    )
    if not rows:
        raise ConfigError(f"table {name} does not exist")
    for r in rows:
        table_name(keyspace, str(r["column_name"]))  # a quoted/mixed-case column is refused, never spliced
    order = {"partition_key": 0, "clustering": 1, "regular": 2, "static": 3}
    rows.sort(key=lambda r: (order[r["kind"]], r["position"], r["column_name"]))
    pk = tuple(str(r["column_name"]) for r in rows if r["kind"] == "partition_key")
    cols = tuple(str(r["column_name"]) for r in rows)
    key_at = [i for i, r in enumerate(rows) if r["kind"] in ("partition_key", "clustering")]

    def key_of(r: Row) -> str:
        return "|".join(repr(r[i]) for i in key_at)

    def hash_of(r: Row) -> int:
        text = "\x1f".join(repr(v) for v in r)
        return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big", signed=True)  # noqa: S324 - checksum

    return TableSpec(keyspace, table, pk, cols, key_of, hash_of, "count(*) AS n", has_truth=False)
