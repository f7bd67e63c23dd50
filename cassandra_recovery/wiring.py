"""The one place that assembles real implementations from settings (tests may pass their own parts)."""

from __future__ import annotations

import atexit
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery import plugins
from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.degraded.cache import OrderCache
from cassandra_recovery.degraded.orders import OrderStore
from cassandra_recovery.degraded.outbox import Outbox
from cassandra_recovery.degraded.policy import PolicyStore
from cassandra_recovery.degraded.relay import Relay
from cassandra_recovery.degraded.service import OrderService
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.breaker import BreakerConfig, CircuitBreaker
from cassandra_recovery.recovery.provisioner import Provisioner
from cassandra_recovery.settings import ClusterConfig, Settings
from cassandra_recovery.storage.migrate import require_current
from cassandra_recovery.storage.names import DOMAIN, SchemaNames


@dataclass
class PgParts:
    """PostgreSQL-only parts: enough to accept writes and run the queue while Cassandra is away."""

    settings: Settings
    cluster_id: str
    pool: ConnectionPool
    owns_pool: bool = True
    store: OrderStore = field(init=False)
    outbox: Outbox = field(init=False)
    policy: PolicyStore = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.settings.domain
        self.store = OrderStore(self.pool, cfg, self.cluster_id)
        self.outbox = Outbox(self.pool, cfg, self.cluster_id)
        self.policy = PolicyStore(self.pool, cfg)

    def close(self) -> None:
        if self.owns_pool:
            self.pool.close()


def pg_parts(settings: Settings, cluster_id: str | None = None, pool: ConnectionPool | None = None) -> PgParts:
    """The domain's stores over `pool` (kept open by close()) or a pool of their own; SchemaNotCurrent when the
    domain's tables are not at this code's migration (`cassandra-recovery db upgrade` makes them)."""
    cluster = settings.cluster(cluster_id)
    require_current(settings.postgres_conninfo(), SchemaNames.from_settings(settings), tracks=(DOMAIN,))
    if pool is not None:
        return PgParts(settings, cluster.id, pool, owns_pool=False)
    return PgParts(settings, cluster.id, make_pool(settings))


@dataclass
class ServiceParts:
    pg: PgParts
    cluster: ClusterConfig
    cql: CqlClient
    cache: OrderCache
    relay: Relay
    service: OrderService
    breaker: CircuitBreaker
    owns_cql: bool = True  # False: the process's shared client (process_cql), left open

    def close(self) -> None:
        if self.owns_cql:
            self.cql.close()
        self.pg.close()

    def empty(self, timeout_s: float = 60.0) -> None:
        """Empty the domain's Cassandra table and its PostgreSQL tables (orders, queue, policy): a demo or a test
        whose verdict must be about its own writes only. Orders are deleted, not truncated: each removal is then
        a logged change (the orders change log), so an outage right after still gets its outage-scoped proof,
        which also proves the removed keys gone from every replica."""
        d = self.pg.store.cfg
        self.cql.truncate(d.keyspace, d.cassandra_table, timeout_s=timeout_s)
        with self.pg.pool.connection() as conn:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(d.orders_table)))
            names = [sql.Identifier(t) for t in (d.outbox_table, d.policy_table)]
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(names)))
            conn.commit()


def service_parts(
    settings: Settings,
    cluster_id: str | None = None,
    breaker: BreakerConfig | None = None,
    pg: PgParts | None = None,
    region: str | None = None,
    background: bool = False,
    cql: CqlClient | None = None,
) -> ServiceParts:
    """The order service with its cache, relay and breaker; PostgreSQL's schema checked. With `region`, the cache
    reads and writes through that datacenter's nodes only (an application in that region).

    background=False (tools that need Cassandra: compare, queue drain, tests): connect now, cache schema made when
    missing; CacheUnavailable (one line) when Cassandra is away. background=True (the service, `lab load`): nothing
    waits for Cassandra; writes and PostgreSQL reads work from the first moment, the cache once Cassandra answers.
    `cql`: a client to use and leave open (the process's, process_cql); by default one of its own, closed by close()."""
    cluster = settings.cluster(cluster_id)
    if region is not None:
        local = [n.address for n in cluster.nodes if n.datacenter == region]
        if not local:
            raise ConfigError(f"cluster {cluster.id} has no node in datacenter {region!r}")
        cluster = cluster.model_copy(update={"local_datacenter": region, "contact_points": local})
    pg_owned = pg is None
    pg = pg or pg_parts(settings, cluster.id)
    owns_cql = cql is None
    cql = cql or CqlClient(cluster)
    per_dc = Counter(n.datacenter or cluster.local_datacenter for n in cluster.nodes)
    nodes_by_dc = per_dc or {cluster.local_datacenter: settings.domain.replication_factor}
    try:
        cache = OrderCache(cql, settings.domain, nodes_by_dc, background=background)
    except BaseException:
        if owns_cql:
            cql.close()
        if pg_owned:
            pg.close()
        raise
    br = CircuitBreaker(breaker or BreakerConfig())
    service = OrderService(pg.store, cache, pg.outbox, pg.policy, br, settings.domain)
    return ServiceParts(pg, cluster, cql, cache, Relay(pg.outbox, cache), service, br, owns_cql)


_shared_cql: dict[tuple[int, str], CqlClient] = {}
_shared_lock = threading.Lock()


def process_cql(cluster: ClusterConfig) -> CqlClient:
    """This process's client of `cluster`, opened on first use: a flow run's tasks (one process per run under
    `serve`) share its sessions instead of connecting again per task. Keyed by pid (a forked child opens its own)
    and by the cluster's whole configuration. Nodes coming back are picked up within the client's reconnection
    delay (at most 10 s), and every proof probes which nodes answer with fresh sockets of its own."""
    key = (os.getpid(), cluster.model_dump_json())
    with _shared_lock:
        found = _shared_cql.get(key)
        if found is None:
            if not _shared_cql:
                atexit.register(close_process_cql)
            found = _shared_cql[key] = CqlClient(cluster)
        return found


def close_process_cql() -> None:
    """Close the clients process_cql opened in this process (tests, orderly shutdown)."""
    with _shared_lock:
        for key, cql in list(_shared_cql.items()):
            if key[0] == os.getpid():
                cql.close()
            del _shared_cql[key]


def provisioner_for(settings: Settings, cluster_id: str) -> Provisioner:
    """The provisioner the cluster's settings name (`none` unless configured; the lab registers its own)."""
    cluster = settings.cluster(cluster_id)
    impl: Any = plugins.load(plugins.PROVISIONERS, cluster.provisioner, "node provisioner")
    provisioner: Provisioner = impl(settings, cluster)
    return provisioner
