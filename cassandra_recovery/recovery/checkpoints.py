"""Repair checkpoints in PostgreSQL: one run per key (incident or schedule), its segments and their states.

A resumed run (new process, same run key) loads the same segments and skips the done ones. A segment found
`running` was interrupted: the engine asks Cassandra what became of it before running it again.

Every write is fenced: it commits only while the writer's Fence holds (an incident's lease), and records the
writer and its token on the run and the segment, so a run that was taken over cannot move a segment back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, fetch_one
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.logic.segments import Segment, SegmentState

_WHERE = ", holder = %(h)s, fencing_token = %(t)s WHERE run_key = %(k)s AND seq = %(s)s RETURNING *"
_RUNNING = (
    "UPDATE repair_segments SET state = 'running', attempts = attempts + 1, started_at = now(), last_error = NULL"
    + _WHERE
)
_DONE = "UPDATE repair_segments SET state = 'done', finished_at = now(), parent_id = %(p)s" + _WHERE
_FAILED = "UPDATE repair_segments SET state = %(st)s, last_error = %(e)s" + _WHERE
_CLAIM = "UPDATE repair_runs SET owner = %s, owner_token = %s WHERE run_key = %s"


@dataclass(frozen=True)
class SegmentRecord:
    seq: int
    segment: Segment
    state: SegmentState
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    parent_id: str | None
    last_error: str | None


@dataclass(frozen=True)
class RepairRun:
    run_key: str
    cluster_id: str
    kind: str
    created: bool  # False: an earlier run with this key exists and is resumed
    segments: list[SegmentRecord]


def _record(r: dict[str, object]) -> SegmentRecord:
    seg = Segment(
        str(r["keyspace"]),
        int(r["start_token"]),  # type: ignore[call-overload]
        int(r["end_token"]),  # type: ignore[call-overload]
        tuple(r["replicas"]),  # type: ignore[arg-type]
        str(r["coordinator"]),
    )
    return SegmentRecord(
        int(r["seq"]),  # type: ignore[call-overload]
        seg,
        SegmentState(str(r["state"])),
        int(r["attempts"]),  # type: ignore[call-overload]
        r["started_at"],  # type: ignore[arg-type]
        r["finished_at"],  # type: ignore[arg-type]
        r["parent_id"],  # type: ignore[arg-type]
        r["last_error"],  # type: ignore[arg-type]
    )


class RepairCheckpoints:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def start_or_resume(
        self, run_key: str, cluster_id: str, kind: str, segments: Sequence[Segment], fence: Fence
    ) -> RepairRun:
        """The run for `run_key`: created with `segments`, or the stored one (its own segments win: a resumed
        run repairs what the interrupted one planned, even if the ring moved since). `fence` becomes its owner."""
        if kind not in ("full", "incremental"):
            raise ValueError(f"repair kind must be full or incremental, got {kind!r}")
        with self.pool.connection() as conn, conn.transaction():
            fence.check(conn)
            row = fetch_one(
                conn.execute(
                    "INSERT INTO repair_runs (run_key, cluster_id, kind) VALUES (%s, %s, %s)"
                    " ON CONFLICT (run_key) DO NOTHING RETURNING run_key",
                    (run_key, cluster_id, kind),
                )
            )
            created = row is not None
            if created:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO repair_segments (run_key, seq, keyspace, start_token, end_token, replicas,"
                        " coordinator) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [
                            (run_key, i, s.keyspace, s.start, s.end, list(s.replicas), s.coordinator)
                            for i, s in enumerate(segments)
                        ],
                    )
            conn.execute(_CLAIM, (fence.holder, fence.token, run_key))
            run = fetch_one(conn.execute("SELECT * FROM repair_runs WHERE run_key = %s", (run_key,)))
            assert run is not None  # noqa: S101 - inserted or found above, in this transaction
            if run["cluster_id"] != cluster_id or run["kind"] != kind:
                raise ValueError(
                    f"repair run {run_key!r} exists for cluster {run['cluster_id']} ({run['kind']}),"
                    f" not {cluster_id} ({kind})"
                )
        return RepairRun(run_key, cluster_id, kind, created, self.segments(run_key))

    def segments(self, run_key: str) -> list[SegmentRecord]:
        with self.pool.connection() as conn:
            rows = fetch_all(conn.execute("SELECT * FROM repair_segments WHERE run_key = %s ORDER BY seq", (run_key,)))
        return [_record(r) for r in rows]

    def in_flight(self, cluster_id: str) -> list[Segment]:
        """Segments of this cluster's runs marked running and not finished (a crashed run's too): repairs of this
        tool that may still run in Cassandra, so that none of them is taken for another tool's."""
        with self.pool.connection() as conn:
            rows = fetch_all(
                conn.execute(
                    "SELECT s.* FROM repair_segments s JOIN repair_runs r USING (run_key)"
                    " WHERE r.cluster_id = %s AND r.finished_at IS NULL AND s.state = 'running'"
                    " ORDER BY s.run_key, s.seq",
                    (cluster_id,),
                )
            )
        return [_record(r).segment for r in rows]

    def mark_running(self, run_key: str, seq: int, fence: Fence) -> SegmentRecord:
        """One more attempt starts now (counted before the repair is launched, so a crash still counts it)."""
        return self._update(_RUNNING, {"k": run_key, "s": seq}, fence)

    def mark_done(self, run_key: str, seq: int, parent_id: str | None, fence: Fence) -> SegmentRecord:
        return self._update(_DONE, {"k": run_key, "s": seq, "p": parent_id}, fence)

    def mark_failed(self, run_key: str, seq: int, error: str, final: bool, fence: Fence) -> SegmentRecord:
        """final=False: back to pending for a retry; final=True: failed for good (escalated)."""
        state = SegmentState.FAILED if final else SegmentState.PENDING
        return self._update(_FAILED, {"k": run_key, "s": seq, "st": state.value, "e": error[:2000]}, fence)

    def finish(self, run_key: str, outcome: str, fence: Fence) -> None:
        with self.pool.connection() as conn, conn.transaction():
            fence.check(conn)
            conn.execute(
                "UPDATE repair_runs SET finished_at = now(), outcome = %s WHERE run_key = %s", (outcome, run_key)
            )

    def owner(self, run_key: str) -> tuple[str | None, int | None]:
        """The holder and token that last claimed the run (None, None: never, or written before fencing)."""
        with self.pool.connection() as conn:
            row = fetch_one(conn.execute("SELECT owner, owner_token FROM repair_runs WHERE run_key = %s", (run_key,)))
        return (None, None) if row is None else (row["owner"], row["owner_token"])

    def _update(self, query: str, params: dict[str, object], fence: Fence) -> SegmentRecord:
        with self.pool.connection() as conn, conn.transaction():
            fence.check(conn)
            row = fetch_one(conn.execute(query, params | {"h": fence.holder, "t": fence.token}))
        if row is None:
            raise KeyError(f"no segment {params['s']} in repair run {params['k']!r}")
        return _record(row)
