"""The fenced log of side effects: every action a run takes on the cluster (a repair segment, hint handoff, a
fix, a replacement) is a row with its run, fencing token and interval, written before the action starts.

The start is fenced: a run whose lease was taken over is refused there and never starts the action. The end is
not: it records what the run already did, and a stale run must still close its own interval truthfully.
A killed run never closes its own intervals. A new holder's first action closes its predecessors' open ones,
except repairs: a repair session goes on inside Cassandra without its run, so a predecessor's repair interval is
closed only when the new holder's repair engine has reconciled that segment (the session finished, failed or was
cancelled). Until then it stays open, and the checks count it as still acting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, fetch_one
from cassandra_recovery.controls.killswitch import AutomationStopped, stopped_in
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.logic.fenced_log import Interval

_BEGIN = """INSERT INTO side_effects (incident_id, holder, fencing_token, action, target)
VALUES (%s, %s, %s, %s, %s) RETURNING id"""
_CLOSE_PREDECESSORS = """UPDATE side_effects SET ended_at = clock_timestamp(),
    outcome = 'abandoned: closed by ' || %(holder)s || ' (token ' || %(token)s || ')'
WHERE incident_id = %(incident)s AND ended_at IS NULL AND fencing_token < %(token)s
    AND action <> 'repair_segment'"""
_CLOSE_RECONCILED = """UPDATE side_effects SET ended_at = clock_timestamp(),
    outcome = 'abandoned: its session reconciled by ' || %(holder)s || ' (token ' || %(token)s || ')'
WHERE incident_id = %(incident)s AND ended_at IS NULL AND fencing_token < %(token)s
    AND action = 'repair_segment' AND target @> %(match)s"""
_END = """UPDATE side_effects SET ended_at = clock_timestamp(), outcome = %s, detail = %s
WHERE id = %s AND ended_at IS NULL"""


@dataclass(frozen=True)
class SideEffect:
    id: int
    incident_id: str | None
    holder: str
    fencing_token: int | None
    action: str
    target: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    detail: dict[str, Any]

    def interval(self) -> Interval:
        session = self.detail.get("parent_id") if self.action == "repair_segment" else None
        # One run is a holder under one token: a crashed flow run resumed under a new lease is a new run.
        run = self.holder if self.fencing_token is None else f"{self.holder} (token {self.fencing_token})"
        return Interval(run, self.action, self.started_at, self.ended_at, session)


@dataclass
class Acting:
    """The open record of one action; the caller sets `outcome` and `detail` before it ends."""

    id: int
    outcome: str = "done"
    detail: dict[str, Any] = field(default_factory=dict)


class SideEffectLog:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def begin(self, fence: Fence, action: str, target: dict[str, Any], cluster_id: str | None = None) -> int:
        """The action's row, committed only while `fence` holds (StaleFencingToken otherwise) and, with
        `cluster_id`, only while that cluster's kill switch is off (AutomationStopped otherwise: nothing written).
        Without it the action is not automation's to stop (cancelling a repair, a person's command)."""
        with self.pool.connection() as conn, conn.transaction():
            fence.check(conn)
            if cluster_id is not None and (switch := stopped_in(conn, cluster_id)) is not None:
                raise AutomationStopped(switch, action)
            if fence.incident_id is not None:
                params = {"holder": fence.holder, "token": fence.token, "incident": fence.incident_id}
                conn.execute(_CLOSE_PREDECESSORS, params)
            row = fetch_one(conn.execute(_BEGIN, (fence.incident_id, fence.holder, fence.token, action, Jsonb(target))))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        return int(row["id"])

    def close_reconciled_repair(self, fence: Fence, match: dict[str, Any]) -> int:
        """A predecessor's repair interval for this segment (`match`: its run key and seq), once the new holder
        knows its session is over; how many were closed. Fenced; nothing to do outside an incident."""
        if fence.incident_id is None:
            return 0
        params = {"holder": fence.holder, "token": fence.token, "incident": fence.incident_id, "match": Jsonb(match)}
        with self.pool.connection() as conn, conn.transaction():
            fence.check(conn)
            return conn.execute(_CLOSE_RECONCILED, params).rowcount

    def end(self, effect_id: int, outcome: str, detail: dict[str, Any] | None = None) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(_END, (outcome[:500], Jsonb(detail or {}), effect_id))

    @contextmanager
    def acting(
        self, fence: Fence, action: str, target: dict[str, Any], cluster_id: str | None = None
    ) -> Iterator[Acting]:
        """Begin (fenced, and refused under `cluster_id`'s kill switch), run the block, end with its outcome; an
        exception ends it as `failed: ...`."""
        rec = Acting(self.begin(fence, action, target, cluster_id))
        try:
            yield rec
        except BaseException as e:
            self.end(rec.id, f"failed: {type(e).__name__}: {e}", rec.detail)
            raise
        self.end(rec.id, rec.outcome, rec.detail)

    def entries(self, incident_id: str | None = None, since: datetime | None = None) -> list[SideEffect]:
        """Oldest first; of one incident when given, from `since` when given."""
        q = "SELECT * FROM side_effects WHERE (%s::text IS NULL OR incident_id = %s)"
        q += " AND (%s::timestamptz IS NULL OR started_at >= %s) ORDER BY started_at, id"
        with self.pool.connection() as conn:
            rows = fetch_all(conn.execute(q, (incident_id, incident_id, since, since)))
        return [SideEffect(**r) for r in rows]
