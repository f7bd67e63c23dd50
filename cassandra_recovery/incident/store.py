"""Incidents in PostgreSQL: one open incident per cluster, fenced compare-and-set writes, an append-only timeline.

"Open" means not resolved (closed_at IS NULL): an escalated incident stays open (a human owns it), so a new
failure joins it. Every method is one short transaction; every write first takes the incident's row lock, so
fencing and state checks and the write they guard are atomic, and one incident's timeline is in commit order.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import Row, fetch_all, fetch_one
from cassandra_recovery.errors import ConfigError, RecoveryError
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.logic.incident_states import IncidentState, check_transition

JSON = dict[str, Any]
Conn = psycopg.Connection[Any]

_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")  # leaves room for the suffixes within PostgreSQL's 63 bytes

# The tables are made by the migrations (cassandra_recovery/storage): `version` and `updated_at` change with the
# content (state, plan, Slack thread); lease grants change `fencing_token`.
_OPEN = """INSERT INTO {inc} (id, cluster_id, state, trigger) VALUES (%(id)s, %(cluster)s, 'detected', %(trigger)s)
ON CONFLICT (cluster_id) WHERE closed_at IS NULL DO NOTHING RETURNING *"""
_LOCK = "SELECT *, lease_expires_at <= clock_timestamp() AS lease_expired FROM {inc} WHERE id = %s FOR NO KEY UPDATE"
_SHARE = "SELECT lease_holder, fencing_token FROM {inc} WHERE id = %s FOR SHARE"
_LOCK_OPEN = "SELECT * FROM {inc} WHERE cluster_id = %s AND closed_at IS NULL FOR NO KEY UPDATE"
_EXPIRY = "clock_timestamp() + make_interval(secs => %(ttl)s)"
_ACQUIRE = """UPDATE {inc} SET lease_holder = %(holder)s, lease_run_key = %(run_key)s, lease_expires_at = {expiry},
    fencing_token = fencing_token + 1 WHERE id = %(id)s RETURNING fencing_token, lease_expires_at"""
_RENEW = "UPDATE {inc} SET lease_expires_at = {expiry} WHERE id = %(id)s RETURNING lease_expires_at"
_RELEASE = "UPDATE {inc} SET lease_holder = NULL, lease_run_key = NULL, lease_expires_at = NULL WHERE id = %s"
_UPDATE = "UPDATE {inc} SET {sets}, version = version + 1, updated_at = clock_timestamp() WHERE id = %(id)s RETURNING *"
_EVENT = "INSERT INTO {ev} (incident_id, kind, actor, fencing_token, data) VALUES (%s, %s, %s, %s, %s) RETURNING *"


class IncidentNotFound(RecoveryError):
    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        super().__init__(f"no incident {incident_id!r}")


class LeaseLost(RecoveryError):
    """The lease was taken over (fencing token changed) or released: the holder must stop working."""

    def __init__(self, lease: Lease, current_holder: str | None, current_token: int) -> None:
        self.incident_id, self.holder, self.token = lease.incident_id, lease.holder, lease.token
        self.current_holder, self.current_token = current_holder, current_token
        super().__init__(
            f"{type(self).__name__} on incident {lease.incident_id}: {lease.holder} has token {lease.token}, "
            f"current token {current_token} held by {current_holder or 'nobody'}"
        )


class StaleFencingToken(LeaseLost):
    """A write carried a lease that is no longer the current one; nothing was written."""


class StateConflict(RecoveryError):
    """Compare-and-set on the state failed: the incident is not in the state the caller expected."""

    def __init__(self, incident_id: str, expected: str, actual: str) -> None:
        self.incident_id, self.expected, self.actual = incident_id, expected, actual
        super().__init__(f"incident {incident_id} is {actual}, not {expected} as expected")


@dataclass(frozen=True)
class Lease:
    incident_id: str
    holder: str
    token: int
    expires_at: datetime


@dataclass(frozen=True)
class Incident:
    id: str
    cluster_id: str
    state: IncidentState
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    trigger: JSON
    plan: JSON | None
    slack_channel: str | None
    slack_ts: str | None
    lease_holder: str | None
    lease_run_key: str | None
    lease_expires_at: datetime | None
    fencing_token: int
    version: int


@dataclass(frozen=True)
class Event:
    seq: int
    incident_id: str
    at: datetime
    kind: str
    actor: str
    fencing_token: int | None
    data: JSON


def _incident(r: Row) -> Incident:
    return Incident(**{f: r[f] for f in Incident.__dataclass_fields__ if f != "state"}, state=IncidentState(r["state"]))


def _holds(row: Row, lease: Lease) -> bool:
    return bool(row["fencing_token"] == lease.token and row["lease_holder"] == lease.holder)


def _ttl(ttl_s: float) -> float:
    if not ttl_s > 0:
        raise ValueError(f"lease ttl must be positive, got {ttl_s}")
    return ttl_s


class IncidentStore:
    """Tables `{prefix}s` and `{prefix}_events` (default `incidents`, `incident_events`)."""

    def __init__(self, pool: ConnectionPool, prefix: str = "incident") -> None:
        if not _PREFIX.match(prefix):
            raise ConfigError(f"invalid incident table prefix {prefix!r}: lower-case letters, digits and '_'")
        self.pool = pool
        self.incidents_table, self.events_table = f"{prefix}s", f"{prefix}_events"
        names = {"inc": f"{prefix}s", "ev": f"{prefix}_events", "rep": f"{prefix}_reports"}
        self._ids = {k: sql.Identifier(v) for k, v in names.items()}

    def _q(self, text: str, **extra: sql.Composable) -> sql.Composed:
        return sql.SQL(text).format(**self._ids, expiry=sql.SQL(_EXPIRY), **extra)

    @contextmanager
    def _tx(self) -> Iterator[Conn]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def _lock(self, conn: Conn, incident_id: str, fence: Lease | None = None) -> Row:
        """Lock the incident row; with `fence`, refuse (StaleFencingToken) unless that lease is the current one."""
        row = fetch_one(conn.execute(self._q(_LOCK), (incident_id,)))
        if row is None:
            raise IncidentNotFound(incident_id)
        if fence is not None and (fence.incident_id != incident_id or not _holds(row, fence)):
            raise StaleFencingToken(fence, row["lease_holder"], row["fencing_token"])
        return row

    def fence(self, lease: Lease) -> Fence:
        """The lease as a Fence for other stores: their writes commit only while it is the current one. FOR SHARE
        lets the holder's writes run side by side and makes a takeover (FOR NO KEY UPDATE) wait for them."""

        def check(conn: Conn) -> None:
            row = fetch_one(conn.execute(self._q(_SHARE), (lease.incident_id,)))
            if row is None:
                raise IncidentNotFound(lease.incident_id)
            if not _holds(row, lease):
                raise StaleFencingToken(lease, row["lease_holder"], row["fencing_token"])

        return Fence(lease.holder, lease.token, lease.incident_id, check)

    def _event(self, conn: Conn, incident_id: str, kind: str, actor: str, token: int | None, data: Any) -> Event:
        r = fetch_one(conn.execute(self._q(_EVENT), (incident_id, kind, actor, token, Jsonb(data))))
        assert r is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        return Event(**{f: r[f] for f in Event.__dataclass_fields__})

    def open_or_join(self, cluster_id: str, trigger: Mapping[str, Any], actor: str) -> tuple[Incident, bool]:
        """The cluster's open incident, created when there is none (True) or joined (False); both are events.
        INSERT ... ON CONFLICT on the partial unique index: concurrent openers wait for the first, then join."""
        for _ in range(10):  # a retry only when the open incident was resolved between our two statements
            with self._tx() as conn:
                new_id = f"inc-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}"
                params = {"id": new_id, "cluster": cluster_id, "trigger": Jsonb(trigger)}
                row = fetch_one(conn.execute(self._q(_OPEN), params))
                if row is not None:
                    self._event(conn, row["id"], "opened", actor, None, trigger)
                    return _incident(row), True
                row = fetch_one(conn.execute(self._q(_LOCK_OPEN), (cluster_id,)))
                if row is not None:
                    self._event(conn, row["id"], "joined", actor, None, trigger)
                    return _incident(row), False
        raise RecoveryError(f"could not open or join an incident for cluster {cluster_id} (resolved repeatedly)")

    def get(self, incident_id: str) -> Incident:
        with self._tx() as conn:
            row = fetch_one(conn.execute(self._q("SELECT * FROM {inc} WHERE id = %s"), (incident_id,)))
        if row is None:
            raise IncidentNotFound(incident_id)
        return _incident(row)

    def open_for(self, cluster_id: str) -> Incident | None:
        """The cluster's open (not resolved) incident, escalated ones included."""
        with self._tx() as conn:
            q = self._q("SELECT * FROM {inc} WHERE cluster_id = %s AND closed_at IS NULL")
            row = fetch_one(conn.execute(q, (cluster_id,)))
        return None if row is None else _incident(row)

    def open_incidents(self) -> list[Incident]:
        """Every open incident, of every cluster (the watchdog's pass), oldest first."""
        with self._tx() as conn:
            rows = fetch_all(conn.execute(self._q("SELECT * FROM {inc} WHERE closed_at IS NULL ORDER BY opened_at")))
        return [_incident(r) for r in rows]

    def recent(self, limit: int = 50, cluster_id: str | None = None, include_closed: bool = False) -> list[Incident]:
        """Open incidents (closed ones too with `include_closed`), newest first, of one cluster or every one."""
        where = "(%s::text IS NULL OR cluster_id = %s)" + ("" if include_closed else " AND closed_at IS NULL")
        q = self._q("SELECT * FROM {inc} WHERE " + where + " ORDER BY opened_at DESC LIMIT %s")
        with self._tx() as conn:
            rows = fetch_all(conn.execute(q, (cluster_id, cluster_id, limit)))
        return [_incident(r) for r in rows]

    def events(self, incident_id: str) -> list[Event]:
        with self._tx() as conn:
            q = self._q("SELECT * FROM {ev} WHERE incident_id = %s ORDER BY seq")
            rows = fetch_all(conn.execute(q, (incident_id,)))
        return [Event(**{f: r[f] for f in Event.__dataclass_fields__}) for r in rows]

    def acquire_lease(self, incident_id: str, holder: str, ttl_s: float, run_key: str | None = None) -> Lease | None:
        """Granted when free, expired, or held under the same run_key (a retried run takes it back at once)."""
        params = {"ttl": _ttl(ttl_s), "id": incident_id, "holder": holder, "run_key": run_key}
        with self._tx() as conn:
            cur = self._lock(conn, incident_id)
            expired, same_run = cur["lease_expired"], run_key is not None and cur["lease_run_key"] == run_key
            if cur["lease_holder"] is not None and not expired and not same_run:
                return None
            reason = "free" if cur["lease_holder"] is None else "expired" if expired else "same_run_key"
            r = fetch_one(conn.execute(self._q(_ACQUIRE), params))
            assert r is not None  # noqa: S101 - the row is locked
            data = {"reason": reason, "run_key": run_key, "ttl_s": ttl_s, "previous_holder": cur["lease_holder"]}
            self._event(conn, incident_id, "lease_acquired", holder, r["fencing_token"], data)
            return Lease(incident_id, holder, r["fencing_token"], r["lease_expires_at"])

    def seize_lease(self, incident_id: str, holder: str, ttl_s: float, reason: str) -> Lease:
        """A person takes the incident whoever holds it: a new fencing token, so the run that held it is refused at
        its next write and stops acting (event `lease_seized` with the previous holder and the reason)."""
        params = {"ttl": _ttl(ttl_s), "id": incident_id, "holder": holder, "run_key": None}
        with self._tx() as conn:
            cur = self._lock(conn, incident_id)
            r = fetch_one(conn.execute(self._q(_ACQUIRE), params))
            assert r is not None  # noqa: S101 - the row is locked
            data = {"reason": reason, "previous_holder": cur["lease_holder"], "previous_token": cur["fencing_token"]}
            self._event(conn, incident_id, "lease_seized", holder, r["fencing_token"], data)
            return Lease(incident_id, holder, r["fencing_token"], r["lease_expires_at"])

    def renew_lease(self, lease: Lease, ttl_s: float) -> Lease:
        """Extend from now; LeaseLost when taken over or released (expired but not taken over still renews)."""
        params = {"ttl": _ttl(ttl_s), "id": lease.incident_id}
        with self._tx() as conn:
            cur = self._lock(conn, lease.incident_id)
            if not _holds(cur, lease):
                raise LeaseLost(lease, cur["lease_holder"], cur["fencing_token"])
            r = fetch_one(conn.execute(self._q(_RENEW), params))
            assert r is not None  # noqa: S101 - the row is locked
        return Lease(lease.incident_id, lease.holder, lease.token, r["lease_expires_at"])

    def release_lease(self, lease: Lease) -> bool:
        """Give the lease up; False (and nothing changed) when it was no longer ours."""
        with self._tx() as conn:
            cur = self._lock(conn, lease.incident_id)
            if not _holds(cur, lease):
                return False
            conn.execute(self._q(_RELEASE), (lease.incident_id,))
            self._event(conn, lease.incident_id, "lease_released", lease.holder, lease.token, {})
        return True

    def _write(self, incident_id: str, lease: Lease, sets: str, params: JSON, event: tuple[str, JSON]) -> Incident:
        """Fenced update under the row lock; with params["old"] also a compare-and-set on the state."""
        with self._tx() as conn:
            cur = self._lock(conn, incident_id, fence=lease)
            if "old" in params and cur["state"] != params["old"]:
                raise StateConflict(incident_id, params["old"], cur["state"])
            row = fetch_one(conn.execute(self._q(_UPDATE, sets=sql.SQL(sets)), {**params, "id": incident_id}))
            assert row is not None  # noqa: S101 - the row is locked
            self._event(conn, incident_id, event[0], lease.holder, lease.token, event[1])
        return _incident(row)

    def transition(
        self,
        incident_id: str,
        expected_state: IncidentState,
        new_state: IncidentState,
        lease: Lease,
        data: Mapping[str, Any],
    ) -> Incident:
        """Compare-and-set on state and fencing token; event `transition` {from, to, data}; resolved closes it."""
        check_transition(expected_state, new_state)
        old, new = IncidentState(expected_state), IncidentState(new_state)
        sets = "state = %(new)s, closed_at = CASE WHEN %(close)s THEN clock_timestamp() ELSE closed_at END"
        params = {"old": old.value, "new": new.value, "close": new is IncidentState.RESOLVED}
        return self._write(incident_id, lease, sets, params, ("transition", {"from": old, "to": new, "data": data}))

    def append_event(
        self, incident_id: str, kind: str, actor: str, data: Mapping[str, Any], lease: Lease | None = None
    ) -> Event:
        """Add to the timeline; with a lease, refused (StaleFencingToken) unless it is the current one."""
        with self._tx() as conn:
            self._lock(conn, incident_id, fence=lease)
            return self._event(conn, incident_id, kind, actor, None if lease is None else lease.token, data)

    def set_plan(self, incident_id: str, plan: Mapping[str, Any], lease: Lease) -> Incident:
        return self._write(incident_id, lease, "plan = %(plan)s", {"plan": Jsonb(plan)}, ("plan_set", {"plan": plan}))

    def set_slack_thread(self, incident_id: str, channel: str, ts: str, lease: Lease) -> Incident:
        sets, data = "slack_channel = %(channel)s, slack_ts = %(ts)s", {"channel": channel, "ts": ts}
        return self._write(incident_id, lease, sets, data, ("slack_thread_set", data))

    def save_report(self, incident_id: str, markdown: str) -> int:
        """A new version of the incident's post-mortem (earlier versions are kept); returns its version."""
        with self._tx() as conn:
            self._lock(conn, incident_id)
            q = self._q("INSERT INTO {rep} (incident_id, markdown) VALUES (%s, %s) RETURNING version")
            r = fetch_one(conn.execute(q, (incident_id, markdown)))
        assert r is not None  # noqa: S101 - RETURNING always yields the row
        return int(r["version"])

    def latest_report(self, incident_id: str) -> str | None:
        with self._tx() as conn:
            q = self._q("SELECT markdown FROM {rep} WHERE incident_id = %s ORDER BY version DESC LIMIT 1")
            r = fetch_one(conn.execute(q, (incident_id,)))
        return None if r is None else str(r["markdown"])
