"""Reads of one replica's copy of a token range, proven by query trace, on an unchanged cluster.

A statement is pinned to the replica as coordinator at CL ONE: a range read then asks exactly one replica (range
reads never speculate, and with one replica there is no digest comparison, so no read repair: verification
changes nothing). The snitch may still pick another replica; the trace names the one that ran the scan, and the
answer counts as evidence for that replica only. A read pinned to a replica and served elsewhere is asked again,
for at most `proof_timeout_s` per chunk, after refreshing that replica's own read latency (see `next_read`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from cassandra_recovery.clients.cql import CqlClient, release_page
from cassandra_recovery.errors import NodeUnreachableError, RecoveryError
from cassandra_recovery.logic.checksum import MOD, ChunkSum
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN
from cassandra_recovery.logic.narrowing import Summary
from cassandra_recovery.logic.pacing import RowPacer
from cassandra_recovery.logic.trace_proof import Attribution, ProofStep, TraceEvent, attribute, next_read
from cassandra_recovery.verification.tables import Row, TableSpec

log = logging.getLogger(__name__)
# A node-local read (LocalStrategy table, one partition): its coordinator runs it and records the latency as its own
# in its dynamic snitch, so a burst of them replaces the slow samples a node kept from its first reads after start.
_LOCAL_READ = "SELECT key FROM system.local WHERE key = 'local'"


class Unproven(RecoveryError):
    """No read of this replica's copy could be proven to come from it."""


def query_bounds(start: int, end: int) -> tuple[int, int]:
    """(start, end] as CQL token bounds: an end at the ring's minimum means its top (no key has MIN_TOKEN)."""
    return start, (MAX_TOKEN if end == MIN_TOKEN else end)


@dataclass(frozen=True)
class Served:
    attribution: Attribution
    rows: dict[str, int] | None = None  # {key: row hash}
    chunk: ChunkSum | None = None
    summary: Summary | None = None
    pages: int = 0


class _Sum:
    """Count and sum of row hashes, folded a page at a time."""

    def __init__(self, hash_of: Callable[[Row], int]):
        self.hash_of, self.n, self.total = hash_of, 0, 0

    def add(self, page: Sequence[Row]) -> None:
        self.n += len(page)
        self.total += sum(map(self.hash_of, page))


class ReplicaReader:
    def __init__(
        self,
        cql: CqlClient,
        spec: TableSpec,
        page_size: int = 40000,  # rows decoded at once per read: a chunk in one page (see VerifyConfig)
        attempts: int = 12,  # reads of one replica's copy at least, however long they take
        pause_s: float = 0.1,
        timeout_s: float = 60.0,
        proof_timeout_s: float = 60.0,  # then retried until this long after the chunk's first read
        refresh_reads: int = 100,
        refresh_wait_s: float = 0.3,  # > the snitch's score update interval (dynamic_snitch_update_interval, 100ms)
        pacer: RowPacer | None = None,  # a rows/s ceiling shared by every read of the pass
    ):
        self.cql = cql
        self.spec = spec
        self.page_size = page_size
        self.attempts = attempts
        self.pause_s = pause_s
        self.timeout_s = timeout_s
        self.proof_timeout_s = proof_timeout_s
        self.refresh_reads = refresh_reads
        self.refresh_wait_s = refresh_wait_s
        self.pacer = pacer or RowPacer(0)
        where = f"WHERE {spec.token_expr()} > %s AND {spec.token_expr()} <= %s"
        self._rows_q = f"SELECT {', '.join(spec.columns)} FROM {spec.name} {where}"
        self._agg_q = f"SELECT {spec.aggregate} FROM {spec.name} {where}"
        self._probe_q = f"SELECT {spec.token_expr()} FROM {spec.name} {where} LIMIT 1"
        self.probes = 0  # one-row reads that showed where a big read would go (not counted in `reads`)
        self.coordinators: list[str] = []  # live nodes; a read pinned to one replica may be retried through these
        self.reads = 0  # statements executed (each traced)
        self.rows_read = 0  # rows received by the client
        self.refreshes = 0  # latency refreshes of replicas whose snitch sent their pinned reads elsewhere
        self._count = threading.Lock()  # chunks are read from several threads
        self._refreshing: dict[str, threading.Lock] = {}
        self._refreshed_at: dict[str, float] = {}
        # Per replica, since when its reads have not been proven (this pass): the retry budget runs from there, so
        # a replica that stays unprovable costs `proof_timeout_s` once, not once per chunk.
        self._unproven_since: dict[str, float] = {}

    def _execute(
        self,
        query: str,
        start: int,
        end: int,
        coordinator: str,
        fold: Callable[[Sequence[Row]], None],
        count: bool = True,
    ) -> tuple[int, list[list[TraceEvent]]]:
        """Each page of the range's rows (tuples in select order) to `fold` as it arrives, one page in memory at a
        time; (rows, traces per page)."""
        stmt = SimpleStatement(query, consistency_level=ConsistencyLevel.ONE, fetch_size=self.page_size)
        host = self.cql.host(coordinator)
        with self._count:
            self.reads += int(count)
        n = 0
        rs = None
        try:
            rs = self.cql.session.execute(
                stmt,
                query_bounds(start, end),
                trace=True,
                host=host,
                timeout=self.timeout_s,
                execution_profile=self.cql.tuple_rows(),
            )
            while True:  # pages stream one after another, each traced
                page = rs.current_rows
                fold(page)
                n += len(page)
                self._paced(len(page))
                if not rs.has_more_pages:
                    break
                rs.fetch_next_page()
            traces = rs.get_all_query_traces(max_wait_sec_per=5.0)
        except Exception as e:  # a timeout or an unavailable node is an unproven read, never a verdict
            raise NodeUnreachableError(f"read on {coordinator} failed: {type(e).__name__}: {e}") from e
        finally:  # a trace that never completed must not keep the page it came with
            release_page(rs)
        events = [[TraceEvent(str(ev.source), str(ev.description)) for ev in t.events] for t in traces]
        return n, events

    def _paced(self, rows: int) -> None:
        if wait := self.pacer.took(rows, time.monotonic()):
            time.sleep(wait)

    def _step(self, replica: str, attempt: int, sent_elsewhere: bool) -> ProofStep | None:
        others = [c for c in self.coordinators if c != replica]
        now = time.monotonic()
        with self._count:
            elapsed = now - self._unproven_since.get(replica, now)
        return next_read(replica, others, attempt, elapsed, self.proof_timeout_s, self.attempts, sent_elsewhere)

    def _track(self, replica: str, proven: bool) -> None:
        with self._count:
            if proven:
                self._unproven_since.pop(replica, None)
            else:
                self._unproven_since.setdefault(replica, time.monotonic())

    def _pause(self, attempt: int) -> None:
        time.sleep(min(self.pause_s * (attempt + 1), 1.0))

    def _refresh(self, replica: str) -> None:
        """Make the replica's dynamic snitch score its own reads by their latency now (read-only, writes nothing).
        Chunks read at once share one refresh per replica and second."""
        with self._count:
            lock = self._refreshing.setdefault(replica, threading.Lock())
        with lock:
            if time.monotonic() - self._refreshed_at.get(replica, -1e9) < 1.0:
                return
            try:
                for _ in range(self.refresh_reads):
                    self.cql.execute_on(replica, _LOCAL_READ)
            except NodeUnreachableError as e:
                log.info("latency refresh of %s failed: %s", replica, e)
                return
            time.sleep(self.refresh_wait_s)  # the snitch recomputes its scores on a timer
            self._refreshed_at[replica] = time.monotonic()
            with self._count:
                self.refreshes += 1
        log.info("%s sent reads pinned to it to another replica: its own read latency was refreshed", replica)

    def _read(self, fn: Any, start: int, end: int, step: ProofStep, replica: str, replicas: Sequence[str]) -> Served:
        if step.refresh:
            self._refresh(replica)
        served: Served = fn(start, end, step.coordinator, replicas)
        return served

    def _routed_to(self, start: int, end: int, step: ProofStep, replica: str, replicas: Sequence[str]) -> str | None:
        """Which replica a read of the range through `step` is served by now, from a traced one-row read: a
        chunk's second and third copies are probed first, since a big read the dynamic snitch sends to a replica
        already proven costs a whole chunk for nothing (a quarter of the rows read at a million rows). None when
        the probe proves nothing (the big read then decides)."""
        if step.refresh:
            self._refresh(replica)
        with self._count:
            self.probes += 1
        try:
            _, events = self._execute(self._probe_q, start, end, step.coordinator, lambda _: None, count=False)
        except NodeUnreachableError:
            return None
        return attribute(events, replicas).served_by

    def _served_sum(self, start: int, end: int, coordinator: str, replicas: Sequence[str]) -> Served:
        """The range's (count, sum of row hashes), reduced as rows arrive: nothing per row outlives its page."""
        acc = _Sum(self.spec.hash_of)
        n, events = self._execute(self._rows_q, start, end, coordinator, acc.add)
        with self._count:
            self.rows_read += n
        return Served(attribute(events, replicas), chunk=ChunkSum(acc.n, acc.total % MOD), pages=len(events))

    def _served_rows(self, start: int, end: int, coordinator: str, replicas: Sequence[str]) -> Served:
        """{key: row hash} of a small range (narrowing's leaves)."""
        keyed: dict[str, int] = {}
        key_of, hash_of = self.spec.key_of, self.spec.hash_of

        def keep(page: Sequence[Row]) -> None:
            for r in page:
                keyed[key_of(r)] = hash_of(r)

        n, events = self._execute(self._rows_q, start, end, coordinator, keep)
        with self._count:
            self.rows_read += n
        return Served(attribute(events, replicas), rows=keyed, pages=len(events))

    def _served_summary(self, start: int, end: int, coordinator: str, replicas: Sequence[str]) -> Served:
        got: list[Row] = []
        _, events = self._execute(self._agg_q, start, end, coordinator, got.extend)
        r = got[0]  # (n) or (n, s): see TableSpec.aggregate
        total = int(r[1] or 0) if len(r) > 1 else 0
        return Served(attribute(events, replicas), summary=Summary(int(r[0]), total % MOD))

    def chunk_sums(
        self, start: int, end: int, replicas: Sequence[str], live: Iterable[str]
    ) -> tuple[dict[str, ChunkSum], dict[str, str]]:
        """Each live replica's (count, sum of row hashes) for (start, end], from reads proven to be its own.

        Returns (proven sums, reason per replica left unproven). A read the snitch sent to another replica is kept
        as that replica's evidence; pinned reads are retried at least `attempts` times and, while a replica stays
        unproven, until `proof_timeout_s` has passed (see `next_read`).
        """
        todo = [r for r in replicas if r in set(live)]
        got: dict[str, ChunkSum] = {}
        why: dict[str, str] = {}
        elsewhere: set[str] = set()  # replicas whose own coordination served another replica's copy
        t0 = time.monotonic()
        attempt = 0
        while True:
            for replica in [r for r in todo if r not in got]:
                if replica in got:  # proven meanwhile by a read pinned to another replica that it served
                    continue
                step = self._step(replica, attempt, replica in elsewhere)
                if step is None:
                    continue
                if got and (ahead := self._routed_to(start, end, step, replica, replicas)) in got:
                    # The big read would be served by a replica already proven: not read twice; next round.
                    why[replica] = f"reads pinned to it were served by {ahead}"
                    self._track(replica, False)
                    if step.coordinator == replica:
                        elsewhere.add(replica)
                    continue
                try:
                    served = self._read(self._served_sum, start, end, step, replica, replicas)
                except NodeUnreachableError as e:
                    why[replica] = str(e)
                    self._track(replica, False)
                    continue
                who = served.attribution.served_by
                if who is None:
                    why[replica] = served.attribution.reason
                    self._track(replica, False)
                    continue
                if who not in got and served.chunk is not None:
                    got[who] = served.chunk
                    self._track(who, True)
                if who != replica:
                    self._track(replica, False)
                    why[replica] = f"reads pinned to it were served by {who}"
                    if step.coordinator == replica:
                        elsewhere.add(replica)
            left = [r for r in todo if r not in got]
            if not left or all(self._step(r, attempt + 1, False) is None for r in left):
                break
            self._pause(attempt)
            attempt += 1
        if any(r not in got for r in todo):
            log.info("(%s, %s]: %d read(s) over %.1fs left %s unproven", start, end, attempt + 1,
                     time.monotonic() - t0, [r for r in todo if r not in got])  # fmt: skip
        return got, {r: why.get(r, "not read") for r in todo if r not in got}

    def _proven(self, kind: str, start: int, end: int, replica: str, replicas: Sequence[str]) -> Served:
        last = ""
        fn = self._served_rows if kind == "rows" else self._served_summary
        t0 = time.monotonic()
        attempt, elsewhere = 0, False
        while (step := self._step(replica, attempt, elsewhere)) is not None:
            try:
                served = self._read(fn, start, end, step, replica, replicas)
            except NodeUnreachableError as e:
                last = str(e)
            else:
                if served.attribution.served_by == replica:
                    self._track(replica, True)
                    return served
                last = served.attribution.reason or f"served by {served.attribution.served_by}"
                elsewhere = elsewhere or (step.coordinator == replica and served.attribution.served_by is not None)
            self._track(replica, False)
            self._pause(attempt)
            attempt += 1
        raise Unproven(
            f"{kind} of ({start}, {end}] on {replica} not proven after {attempt} reads "
            f"in {time.monotonic() - t0:.0f}s: {last}"
        )

    def summary(self, start: int, end: int, replica: str, replicas: Sequence[str]) -> Summary:
        """The server-side (count, sum) of this replica's copy (the rows stay on the server)."""
        s = self._proven("summary", start, end, replica, replicas).summary
        assert s is not None  # noqa: S101 - set by _served_summary
        return s

    def rows(self, start: int, end: int, replica: str, replicas: Sequence[str]) -> dict[str, int]:
        """{key: row hash} of this replica's copy of a (small) range."""
        return dict(self._proven("rows", start, end, replica, replicas).rows or {})
