"""The Cassandra read cache of orders: versioned writes (USING TIMESTAMP) and fast-failing reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel, OperationTimedOut
from cassandra.cluster import ExecutionProfile
from cassandra.policies import ConstantSpeculativeExecutionPolicy, DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement, dict_factory

from cassandra_recovery.clients.cql import CqlClient, release_page
from cassandra_recovery.degraded.connect import BackgroundConnect, CacheUnavailable
from cassandra_recovery.degraded.model import StoredOrder
from cassandra_recovery.degraded.schema import ensure_cassandra_schema
from cassandra_recovery.logic.checksum import from_millis
from cassandra_recovery.settings import DomainConfig

READ_PROFILE = "cache-read"
WRITE_PROFILE = "cache-write"


@dataclass(frozen=True)
class _Statements:
    get: PreparedStatement
    put: PreparedStatement
    delete: PreparedStatement


class OrderCache:
    """Reads and versioned writes of the cache table; a cell's timestamp is the row's PostgreSQL version,
    so whichever order deliveries arrive in, the newest version wins (last write wins by timestamp).

    background=True (the order service): nothing connects in the constructor; the session, the cache schema (made
    only when missing) and the prepared statements come from a background attempt, and until it succeeds every call
    fails at once with CacheUnavailable. background=False: all of it now, CacheUnavailable when Cassandra is away."""

    def __init__(
        self,
        cql: CqlClient,
        cfg: DomainConfig,
        nodes_by_dc: Mapping[str, int] | None = None,
        background: bool = False,
    ):
        self.cql = cql
        self.cfg = cfg
        self._nodes_by_dc = dict(nodes_by_dc or {cql.config.local_datacenter: cfg.replication_factor})
        self._link: BackgroundConnect[_Statements] = BackgroundConnect(self._prepare, f"Cassandra ({cql.config.id})")
        if background:
            self._link.start()
        else:
            self._link.connect_now()

    @property
    def connected(self) -> bool:
        return self._link.ready

    def _prepare(self) -> _Statements:
        cfg, cql = self.cfg, self.cql
        ensure_cassandra_schema(cql, cfg, self._nodes_by_dc)  # no DDL when the schema is there already
        cluster = cql.session.cluster
        lbp = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cql.config.local_datacenter))
        if READ_PROFILE not in cluster.profile_manager.profiles:
            # Reads are idempotent: after speculative_delay_s the driver also asks the next replica, so a
            # hung coordinator costs that delay, not the timeout.
            _add_profile(
                cluster,
                READ_PROFILE,
                ExecutionProfile(
                    load_balancing_policy=lbp,
                    request_timeout=cfg.read_timeout_s,
                    row_factory=dict_factory,
                    consistency_level=ConsistencyLevel.name_to_value[cfg.read_consistency],
                    speculative_execution_policy=ConstantSpeculativeExecutionPolicy(cfg.speculative_delay_s, 2),
                ),
            )
            # Cache writes carry an explicit timestamp, so repeating one is harmless: speculate too, or a
            # hung coordinator would stall the relay (and grow the lag) for the whole timeout.
            _add_profile(
                cluster,
                WRITE_PROFILE,
                ExecutionProfile(
                    load_balancing_policy=lbp,
                    request_timeout=cfg.write_timeout_s,
                    row_factory=dict_factory,
                    consistency_level=ConsistencyLevel.name_to_value[cfg.write_consistency],
                    speculative_execution_policy=ConstantSpeculativeExecutionPolicy(2 * cfg.speculative_delay_s, 2),
                ),
            )
        table = f"{cfg.keyspace}.{cfg.cassandra_table}"
        s = cql.session
        get = s.prepare(f"SELECT id, customer, status, amount_cents, updated_at, version FROM {table} WHERE id = ?")
        get.is_idempotent = True
        put = s.prepare(
            f"INSERT INTO {table} (id, customer, status, amount_cents, updated_at, version) "
            "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        put.is_idempotent = True  # same version, same timestamp: a retry changes nothing
        delete = s.prepare(f"DELETE FROM {table} USING TIMESTAMP ? WHERE id = ?")
        delete.is_idempotent = True
        return _Statements(get, put, delete)

    def get(self, order_id: str, consistency: str | None = None) -> StoredOrder | None:
        stmt = self._link.get().get.bind((order_id,))
        if consistency:
            stmt.consistency_level = ConsistencyLevel.name_to_value[consistency]
        rs = self.cql.session.execute(stmt, execution_profile=READ_PROFILE)
        rows = list(rs)
        release_page(rs)  # a read per request: its future must not keep the row until a full collection
        return StoredOrder.from_row(rows[0]) if rows else None

    def put(self, payload: dict[str, Any], version: int) -> None:
        put = self._link.get().put
        updated = from_millis(payload["updated_at_ms"])
        self.cql.session.execute(
            put,
            (payload["id"], payload["customer"], payload["status"], payload["amount_cents"], updated, version, version),
            execution_profile=WRITE_PROFILE,
        )

    def put_many(self, items: list[tuple[dict[str, Any], int]], concurrency: int = 64) -> list[BaseException | None]:
        """Concurrent versioned writes; per item None on success or the exception it raised."""
        try:
            put = self._link.get().put
        except CacheUnavailable as e:  # every item fails the same way; the relay backs them off
            return [e] * len(items)
        futures = []
        results: list[BaseException | None] = []
        for i, (payload, version) in enumerate(items):
            args = (
                payload["id"],
                payload["customer"],
                payload["status"],
                payload["amount_cents"],
                from_millis(payload["updated_at_ms"]),
                version,
                version,
            )
            futures.append(self.cql.session.execute_async(put, args, execution_profile=WRITE_PROFILE))
            if len(futures) >= concurrency or i == len(items) - 1:
                for f in futures:
                    try:
                        f.result()
                        results.append(None)
                    except Exception as e:  # reported per item; the relay backs off that entry only
                        results.append(e)
                futures = []
        return results

    def delete(self, order_id: str, version: int) -> None:
        self.cql.session.execute(self._link.get().delete, (version, order_id), execution_profile=WRITE_PROFILE)


def _add_profile(cluster: Any, name: str, profile: ExecutionProfile) -> None:
    """Register a profile; it is in place even when the driver times out opening pools to a hung node
    (which must not stop the service from starting while a node is frozen)."""
    try:
        cluster.add_execution_profile(name, profile, pool_wait_timeout=1.0)
    except OperationTimedOut:
        pass
