"""The per-replica reader's retries on a scripted dynamic snitch (no cluster): a replica that sends reads pinned to it
elsewhere is proven once its own latency is refreshed; a copy never proven stays unproven after the budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cassandra_recovery.logic.murmur3 import MIN_TOKEN
from cassandra_recovery.logic.trace_proof import TraceEvent
from cassandra_recovery.verification.replica import ReplicaReader, Unproven
from cassandra_recovery.verification.tables import TableSpec

pytestmark = pytest.mark.area("verification")

A, B = "127.0.0.2", "127.0.0.5"
SPEC = TableSpec("ks", "t", ("id",), ("id",), lambda r: str(r[0]), lambda r: len(str(r[0])), "count(*) AS n", False)


class FakeCql:
    def __init__(self) -> None:
        self.local_reads: dict[str, int] = {}

    def execute_on(self, address: str, query: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.local_reads[address] = self.local_reads.get(address, 0) + 1
        return [{"key": "local"}]


class SnitchReader(ReplicaReader):
    """A coordinator serves reads from `prefers[coordinator]` until its own latency was refreshed."""

    def __init__(self, prefers: dict[str, str], refresh_helps: bool = True, **kw: Any) -> None:
        self.fake = FakeCql()
        super().__init__(self.fake, SPEC, pause_s=0.0, refresh_wait_s=0.0, **kw)  # type: ignore[arg-type]
        self.prefers, self.refresh_helps = prefers, refresh_helps

    def _execute(
        self, query: str, start: int, end: int, coordinator: str, fold: Callable[[Any], None], count: bool = True
    ) -> tuple[int, list[list[TraceEvent]]]:
        self.reads += int(count)
        refreshed = self.refresh_helps and self.fake.local_reads.get(coordinator, 0) > 0
        server = coordinator if refreshed else self.prefers.get(coordinator, coordinator)
        events = [TraceEvent(coordinator, "Parsing SELECT"), TraceEvent(server, "Executing seq scan across 1 sstables")]
        fold([(1,)] if query == self._agg_q else [("k1",)])  # one page: the summary (n) or one row (id)
        return 1, [events]


def test_a_replica_whose_snitch_sends_pinned_reads_elsewhere_is_proven_after_a_latency_refresh() -> None:
    reader = SnitchReader({B: A}, attempts=12, proof_timeout_s=60.0)
    reader.coordinators = [A, B]
    got, why = reader.chunk_sums(MIN_TOKEN, 0, [A, B], [A, B])
    assert set(got) == {A, B} and why == {}
    assert reader.refreshes == 1 and reader.fake.local_reads == {B: reader.refresh_reads}
    # A proven; B's probe shows its read would be served by A, so it is not read; B through A (probed: A again,
    # not read); B refreshed, probed, read and proven its own: two reads for two copies, three probes
    assert (reader.reads, reader.probes) == (2, 3)


def test_a_copy_never_proven_stays_unproven_once_attempts_and_budget_are_spent() -> None:
    reader = SnitchReader({B: A}, refresh_helps=False, attempts=5, proof_timeout_s=0.01)
    reader.coordinators = [A, B]
    got, why = reader.chunk_sums(MIN_TOKEN, 0, [A, B], [A, B])
    assert set(got) == {A} and why == {B: f"reads pinned to it were served by {A}"}
    with pytest.raises(Unproven, match="not proven after 5 reads"):
        reader.summary(MIN_TOKEN, 0, B, [A, B])


def test_no_refresh_when_every_read_is_proven_at_once() -> None:
    reader = SnitchReader({}, attempts=12, proof_timeout_s=60.0)
    reader.coordinators = [A, B]
    got, why = reader.chunk_sums(MIN_TOKEN, 0, [A, B], [A, B])
    assert set(got) == {A, B} and reader.refreshes == 0 and reader.reads == 2
