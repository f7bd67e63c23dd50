"""Per-cluster degradation policy in PostgreSQL, read by services through a short cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_one
from cassandra_recovery.controls.killswitch import AutomationStopped, stopped_in
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.settings import DomainConfig


class Mode(StrEnum):
    NORMAL = "normal"
    DEGRADED = "degraded"


@dataclass(frozen=True)
class DegradationPolicy:
    cluster_id: str
    mode: Mode
    read_consistency: str  # for non-critical reads
    fallback_enabled: bool  # reads may fall back to PostgreSQL
    reason: str
    set_by: str
    since: datetime | None
    incident_id: str | None = None


def default_policy(cluster_id: str, cfg: DomainConfig) -> DegradationPolicy:
    return DegradationPolicy(cluster_id, Mode.NORMAL, cfg.read_consistency, True, "default", "system", None)


class PolicyStore:
    """get() is cached for cfg.policy_cache_s so a busy service asks PostgreSQL at most that often;
    when PostgreSQL cannot be asked, the last known policy stays in force."""

    def __init__(self, pool: ConnectionPool, cfg: DomainConfig, clock: Callable[[], float] = time.monotonic):
        self.pool = pool
        self.cfg = cfg
        self.clock = clock
        self._t = sql.Identifier(cfg.policy_table)
        self._cache: dict[str, tuple[float, DegradationPolicy]] = {}
        self._lock = threading.Lock()

    def get(self, cluster_id: str) -> DegradationPolicy:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(cluster_id)
        if hit and now - hit[0] < self.cfg.policy_cache_s:
            return hit[1]
        try:
            policy = self._load(cluster_id)
        except Exception:
            if hit:
                with self._lock:  # keep the last known policy, and ask again only after policy_cache_s
                    self._cache[cluster_id] = (now, hit[1])
                return hit[1]
            raise
        with self._lock:
            self._cache[cluster_id] = (now, policy)
        return policy

    def _load(self, cluster_id: str) -> DegradationPolicy:
        q = sql.SQL("SELECT * FROM {} WHERE cluster_id = %s").format(self._t)
        with self.pool.connection() as conn:
            r = fetch_one(conn.execute(q, (cluster_id,)))
            conn.rollback()
        if r is None:
            return default_policy(cluster_id, self.cfg)
        return DegradationPolicy(
            r["cluster_id"],
            Mode(r["mode"]),
            r["read_consistency"],
            r["fallback_enabled"],
            r["reason"],
            r["set_by"],
            r["since"],
            r["incident_id"],
        )

    def set(
        self,
        cluster_id: str,
        mode: Mode,
        reason: str,
        set_by: str,
        read_consistency: str | None = None,
        fallback_enabled: bool = True,
        incident_id: str | None = None,
        fence: Fence | None = None,
        stoppable: bool = False,
    ) -> DegradationPolicy:
        """Set the cluster's policy; with `fence` (an incident's lease), only while it holds (StaleFencingToken);
        `stoppable` (automation's change, not a person's): only while the kill switch is off (AutomationStopped)."""
        from cassandra import ConsistencyLevel

        cl = (read_consistency or self.cfg.read_consistency).upper()
        if cl not in ConsistencyLevel.name_to_value:
            raise ValueError(f"unknown consistency level {read_consistency!r}")
        q = sql.SQL(
            "INSERT INTO {t} (cluster_id, mode, read_consistency, fallback_enabled, reason, set_by, since, incident_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, now(), %s) ON CONFLICT (cluster_id) DO UPDATE SET"
            " mode = EXCLUDED.mode, read_consistency = EXCLUDED.read_consistency,"
            " fallback_enabled = EXCLUDED.fallback_enabled, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by,"
            " since = now(), incident_id = EXCLUDED.incident_id"
        ).format(t=self._t)
        with self.pool.connection() as conn, conn.transaction():
            if fence is not None:
                fence.check(conn)
            if stoppable and (switch := stopped_in(conn, cluster_id)) is not None:
                raise AutomationStopped(switch, f"policy change to {mode.value}")
            conn.execute(q, (cluster_id, mode.value, cl, fallback_enabled, reason, set_by, incident_id))
        with self._lock:
            self._cache.pop(cluster_id, None)
        return self.get(cluster_id)
