"""Reads of one replica's copy of a token range, proven by query trace, on an unchanged cluster.

A statement is pinned to the replica as coordinator at CL ONE: a range read then asks exactly one replica (range
reads never speculate, and with one replica there is no digest comparison, so no read repair: verification
changes nothing). The snitch may still pick another replica; the trace names the one that ran the scan, and the
answer counts as evidence for that replica only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.errors import NodeUnreachableError, RecoveryError
from cassandra_recovery.logic.checksum import MOD, ChunkSum
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN
from cassandra_recovery.logic.narrowing import Summary
from cassandra_recovery.logic.trace_proof import Attribution, TraceEvent, attribute
from cassandra_recovery.verification.tables import TableSpec

log = logging.getLogger(__name__)


class Unproven(RecoveryError):
    """No read of this replica's copy could be proven to come from it."""


def query_bounds(start: int, end: int) -> tuple[int, int]:
    """(start, end] as CQL token bounds: an end at the ring's minimum means its top (no key has MIN_TOKEN)."""
    return start, (MAX_TOKEN if end == MIN_TOKEN else end)


@dataclass(frozen=True)
class Served:
    attribution: Attribution
    rows: list[dict[str, Any]] | None = None
    chunk: ChunkSum | None = None
    summary: Summary | None = None
    pages: int = 0


class ReplicaReader:
    def __init__(
        self,
        cql: CqlClient,
        spec: TableSpec,
        page_size: int = 20000,  # a chunk (about 5,000 rows) in one page: one replica serves it all
        attempts: int = 12,
        pause_s: float = 0.1,
        timeout_s: float = 60.0,
    ):
        self.cql = cql
        self.spec = spec
        self.page_size = page_size
        self.attempts = attempts
        self.pause_s = pause_s
        self.timeout_s = timeout_s
        where = f"WHERE {spec.token_expr()} > %s AND {spec.token_expr()} <= %s"
        self._rows_q = f"SELECT {', '.join(spec.columns)} FROM {spec.name} {where}"
        self._agg_q = f"SELECT {spec.aggregate} FROM {spec.name} {where}"
        self.coordinators: list[str] = []  # live nodes; a read pinned to one replica may be retried through these
        self.reads = 0  # statements executed (each traced)
        self.rows_read = 0  # rows received by the client
        self._count = threading.Lock()  # chunks are read from several threads

    def _execute(self, query: str, start: int, end: int, coordinator: str) -> tuple[list[Any], list[list[TraceEvent]]]:
        stmt = SimpleStatement(query, consistency_level=ConsistencyLevel.ONE, fetch_size=self.page_size)
        host = self.cql.host(coordinator)
        with self._count:
            self.reads += 1
        try:
            rs = self.cql.session.execute(stmt, query_bounds(start, end), trace=True, host=host, timeout=self.timeout_s)
            rows = list(rs)  # pages stream one after another, each traced
            traces = rs.get_all_query_traces(max_wait_sec_per=5.0)
        except Exception as e:  # a timeout or an unavailable node is an unproven read, never a verdict
            raise NodeUnreachableError(f"read on {coordinator} failed: {type(e).__name__}: {e}") from e
        events = [[TraceEvent(str(ev.source), str(ev.description)) for ev in t.events] for t in traces]
        return rows, events

    def _coordinator(self, replica: str, attempt: int) -> str:
        """The replica itself first; then every live node in turn, since a coordinator whose dynamic snitch
        ranks this replica first (e.g. one that has not seen it slow) serves the read from it."""
        others = [c for c in self.coordinators if c != replica]
        return replica if attempt % 2 == 0 or not others else others[(attempt // 2) % len(others)]

    def _pause(self, attempt: int) -> None:
        time.sleep(min(self.pause_s * (attempt + 1), 1.0))

    def _served_rows(self, start: int, end: int, coordinator: str, replicas: Sequence[str]) -> Served:
        rows, events = self._execute(self._rows_q, start, end, coordinator)
        with self._count:
            self.rows_read += len(rows)
        return Served(attribute(events, replicas), rows=rows, pages=len(events))

    def _served_summary(self, start: int, end: int, coordinator: str, replicas: Sequence[str]) -> Served:
        rows, events = self._execute(self._agg_q, start, end, coordinator)
        r = rows[0]
        return Served(attribute(events, replicas), summary=Summary(int(r["n"]), int(r.get("s") or 0) % MOD))

    def chunk_sums(
        self, start: int, end: int, replicas: Sequence[str], live: Iterable[str]
    ) -> tuple[dict[str, ChunkSum], dict[str, str]]:
        """Each live replica's (count, sum of row hashes) for (start, end], from reads proven to be its own.

        Returns (proven sums, reason per replica left unproven). A read the snitch sent to another replica is kept
        as that replica's evidence; pinned reads are retried (the dynamic snitch's scores move) up to `attempts`.
        """
        todo = [r for r in replicas if r in set(live)]
        got: dict[str, ChunkSum] = {}
        why: dict[str, str] = {}
        for attempt in range(self.attempts):
            for replica in [r for r in todo if r not in got]:
                try:
                    served = self._served_rows(start, end, self._coordinator(replica, attempt), replicas)
                except NodeUnreachableError as e:
                    why[replica] = str(e)
                    continue
                who = served.attribution.served_by
                if who is None:
                    why[replica] = served.attribution.reason
                    continue
                if who not in got and served.rows is not None:
                    got[who] = ChunkSum.of(self.spec.hash_of(r) for r in served.rows)
                if who != replica:
                    why.setdefault(replica, f"reads pinned to it were served by {who}")
            if all(r in got for r in todo):
                break
            self._pause(attempt)
        return got, {r: why.get(r, "not read") for r in todo if r not in got}

    def _proven(self, kind: str, start: int, end: int, replica: str, replicas: Sequence[str]) -> Served:
        last = ""
        for attempt in range(self.attempts):
            try:
                fn = self._served_rows if kind == "rows" else self._served_summary
                served = fn(start, end, self._coordinator(replica, attempt), replicas)
            except NodeUnreachableError as e:
                last = str(e)
            else:
                if served.attribution.served_by == replica:
                    return served
                last = served.attribution.reason or f"served by {served.attribution.served_by}"
            self._pause(attempt)
        raise Unproven(f"{kind} of ({start}, {end}] on {replica} not proven after {self.attempts} reads: {last}")

    def summary(self, start: int, end: int, replica: str, replicas: Sequence[str]) -> Summary:
        """The server-side (count, sum) of this replica's copy (the rows stay on the server)."""
        s = self._proven("summary", start, end, replica, replicas).summary
        assert s is not None  # noqa: S101 - set by _served_summary
        return s

    def rows(self, start: int, end: int, replica: str, replicas: Sequence[str]) -> dict[str, int]:
        """{key: row hash} of this replica's copy of a (small) range."""
        served = self._proven("rows", start, end, replica, replicas)
        return {self.spec.key_of(r): self.spec.hash_of(r) for r in served.rows or []}
