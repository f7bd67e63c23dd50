"""CQL client on cassandra-driver: statements pinned to one host for node-local views."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from cassandra import ConsistencyLevel, DriverException, OperationTimedOut
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.connection import ConnectionException
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    HostFilterPolicy,
    LoadBalancingPolicy,
    TokenAwarePolicy,
)
from cassandra.pool import Host
from cassandra.query import SimpleStatement, ValueSequence, dict_factory, tuple_factory

from cassandra_recovery.errors import ConfigError, NodeUnreachableError
from cassandra_recovery.settings import ClusterConfig

# What the driver raises when it cannot reach the chosen host at all.
_UNREACHABLE = (NoHostAvailable, OperationTimedOut, ConnectionException)

log = logging.getLogger(__name__)


class CqlClient:
    """One driver Cluster per registered cluster; `execute_on` runs a statement on one chosen node."""

    def __init__(
        self,
        cluster: ClusterConfig,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        hosts: Collection[str] | None = None,
    ):
        """hosts: when given, the only addresses this client connects to. Opening a session waits for a pool to
        every host it uses, so a client that only needs the nodes that answer must not wait `connect_timeout_s`
        on a hung one (during an outage, every such client would)."""
        self.config = cluster
        # Statements are pinned to nodes of any datacenter (per-replica reads, virtual tables): keep a pool to every
        # node. Unpinned statements still go to the local datacenter first.
        policy: LoadBalancingPolicy = TokenAwarePolicy(
            DCAwareRoundRobinPolicy(
                local_dc=cluster.local_datacenter, used_hosts_per_remote_dc=max(1, len(cluster.nodes))
            )
        )
        contact_points = cluster.contact_points
        if hosts is not None:
            allowed = frozenset(hosts)
            if not allowed:
                raise ConfigError(f"no host to connect to in cluster {cluster.id}")
            policy = HostFilterPolicy(policy, predicate=lambda host: host.address in allowed)
            contact_points = [a for a in contact_points if a in allowed] or sorted(allowed)
        profile = ExecutionProfile(
            load_balancing_policy=policy,
            request_timeout=request_timeout_s,
            row_factory=dict_factory,
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        )
        auth = None
        if cluster.username:
            pw = cluster.password.get_secret_value() if cluster.password else ""
            auth = PlainTextAuthProvider(username=cluster.username, password=pw)
        self._cluster = Cluster(
            contact_points=contact_points,
            port=cluster.port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            auth_provider=auth,
            connect_timeout=connect_timeout_s,
            control_connection_timeout=connect_timeout_s,
            protocol_version=5,
            # A recovery tool must notice a node that came back within seconds, not the default 10 min.
            reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0),
        )
        self._session: Session | None = None
        self._tuple_rows: ExecutionProfile | None = None

    def __enter__(self) -> CqlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._cluster.shutdown()

    @property
    def session(self) -> Session:
        if self._session is None:
            # Pools to every host open before the first pinned statement, or it may find none yet.
            self._session = self._cluster.connect(wait_for_all_pools=True)
        return self._session

    def tuple_rows(self) -> ExecutionProfile:
        """The default profile with rows as tuples in select order: for scans that fold every row (verification),
        where building a dict per row costs the client about as much as decoding it."""
        if self._tuple_rows is None:
            self._tuple_rows = self.session.execution_profile_clone_update(
                EXEC_PROFILE_DEFAULT, row_factory=tuple_factory
            )
        return self._tuple_rows

    def host(self, address: str) -> Host:
        self.session  # noqa: B018 - connecting populates metadata
        for h in self._cluster.metadata.all_hosts():
            if h.address == address:
                return h
        raise NodeUnreachableError(f"{address} is not a known host of cluster {self.config.id}")

    def rediscover(self, timeout_s: float = 30.0) -> None:
        """Re-read the node list now (a node joined or came back). The driver refuses while its control connection
        is itself reconnecting, which a node that just restarted often causes: retry until `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._cluster.refresh_nodes()
                return
            except DriverException as e:
                if time.monotonic() > deadline:
                    raise NodeUnreachableError(f"cluster {self.config.id}: node list not refreshed: {e}") from e
                time.sleep(0.5)

    def execute(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        consistency: int | None = None,
        timeout_s: float | None = None,
    ) -> list[dict[str, Any]]:
        stmt = SimpleStatement(query, consistency_level=consistency)
        kwargs: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        return _all_rows(self.session.execute(stmt, params, **kwargs))

    def execute_on(
        self,
        address: str,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        timeout_s: float = 5.0,
        consistency: int = ConsistencyLevel.ONE,
    ) -> list[dict[str, Any]]:
        """Run a statement with this node as coordinator (node-local views: system.local, system_views.*)."""
        stmt = SimpleStatement(query, consistency_level=consistency)
        try:
            return _all_rows(self.session.execute(stmt, params, timeout=timeout_s, host=self.host(address)))
        except _UNREACHABLE as e:  # not server-side errors (syntax, invalid request): those propagate as-is
            raise NodeUnreachableError(f"query on {address} failed: {type(e).__name__}: {e}") from e

    # node-local views -------------------------------------------------------------------------
    def local(self, address: str) -> dict[str, Any]:
        rows = self.execute_on(
            address,
            "SELECT host_id, release_version, data_center, rack, schema_version, "
            "broadcast_address, tokens FROM system.local",
        )
        return rows[0]

    def peers(self, address: str) -> list[dict[str, Any]]:
        return self.execute_on(
            address,
            "SELECT peer, peer_port, host_id, data_center, rack, schema_version, release_version FROM system.peers_v2",
        )

    def settings(self, address: str, names: Sequence[str]) -> dict[str, str]:
        rows = self.execute_on(
            address, "SELECT name, value FROM system_views.settings WHERE name IN %s", (ValueSequence(names),)
        )
        return {r["name"]: r["value"] for r in rows}

    def pending_hints(self, address: str) -> list[dict[str, Any]]:
        return self.execute_on(address, "SELECT * FROM system_views.pending_hints")

    def thread_pools(self, address: str) -> list[dict[str, Any]]:
        return self.execute_on(address, "SELECT * FROM system_views.thread_pools")

    def gossip_info(self, address: str) -> list[dict[str, Any]]:
        return self.execute_on(address, "SELECT * FROM system_views.gossip_info")

    def repairs(self, address: str) -> list[dict[str, Any]]:
        return self.execute_on(address, "SELECT * FROM system_views.repairs")

    def truncate(self, keyspace: str, table: str, timeout_s: float = 60.0) -> None:
        """TRUNCATE a table named by validated identifiers (never text spliced from input)."""
        self.execute("TRUNCATE " + table_name(keyspace, table), timeout_s=timeout_s)

    def release_version(self) -> str:
        return str(self.execute("SELECT release_version FROM system.local")[0]["release_version"])


_CQL_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


def identifier(name: str) -> str:
    """`name` after checking it is a plain lower-case CQL identifier (ConfigError otherwise)."""
    if not _CQL_IDENT.match(name):
        raise ConfigError(f"invalid CQL identifier {name!r}: lower-case letters, digits and '_'")
    return name


def table_name(keyspace: str, table: str) -> str:
    """`keyspace.table` after checking both are plain lower-case CQL identifiers (ConfigError otherwise)."""
    return f"{identifier(keyspace)}.{identifier(table)}"


def _all_rows(rs: Any) -> list[dict[str, Any]]:
    rows = list(rs)
    release_page(rs)
    return rows


def release_page(rs: Any) -> None:
    """Let a consumed result's last page be freed now. A ResponseFuture and its timer reference each other (the
    timer's callback is the future's bound method), so the future and the page of rows it keeps are freed only
    by a full garbage collection, and rows (dicts of plain values) are not tracked by the collector, so nothing
    triggers one: a scan's pages pile up with the table's size (2 GiB at a million rows). Private attributes of
    the driver, looked up defensively: a driver without them just keeps its old behaviour."""
    future = getattr(rs, "response_future", None)
    if future is None:
        return
    if hasattr(future, "_final_result"):
        future._final_result = None
    if hasattr(future, "_timer"):
        future._timer = None  # cancelled already (the answer came); this breaks the cycle
    if hasattr(rs, "_current_rows"):
        rs._current_rows = []
