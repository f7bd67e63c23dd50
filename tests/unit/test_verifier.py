"""The verifier's walk on in-memory replicas: the majority reference, narrowing to keys, unproven reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cassandra_recovery.logic.checksum import ChunkSum, canonical, row_hash
from cassandra_recovery.logic.murmur3 import MIN_TOKEN, token_of
from cassandra_recovery.logic.narrowing import Summary
from cassandra_recovery.logic.replication import TokenRange
from cassandra_recovery.settings import ClusterConfig, DomainConfig, NodeAccess
from cassandra_recovery.verification.tables import TableSpec, orders_spec
from cassandra_recovery.verification.verifier import Verifier, VerifyConfig
from tests import faults as F

pytestmark = pytest.mark.area("verification")

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"
RING = [TokenRange(MIN_TOKEN, MIN_TOKEN, (A, B, C))]  # one token: every node holds the whole ring


def _in(start: int, end: int, key: str) -> bool:
    t = token_of(key)
    return t > start and (t <= end or end == MIN_TOKEN)


class FakeReplicas:
    """Each replica's {key: row hash}; `unproven` replicas never give an attributable read."""

    def __init__(self, data: dict[str, dict[str, int]], unproven: Iterable[str] = ()):
        self.data, self.unproven = data, set(unproven)
        self.reads = self.rows_read = 0

    def _rows(self, replica: str, start: int, end: int) -> dict[str, int]:
        self.reads += 1
        rows = {k: h for k, h in self.data[replica].items() if _in(start, end, k)}
        self.rows_read += len(rows)
        return rows

    def chunk_sums(
        self, start: int, end: int, replicas: Sequence[str], live: Iterable[str]
    ) -> tuple[dict[str, ChunkSum], dict[str, str]]:
        got = {r: ChunkSum.of(self._rows(r, start, end).values()) for r in replicas if r in set(live)}
        why = {r: "trace names another node" for r in self.unproven if r in got}
        return {r: s for r, s in got.items() if r not in self.unproven}, why

    def summary(self, start: int, end: int, replica: str, replicas: Sequence[str]) -> Summary:
        rows = self._rows(replica, start, end)
        return Summary(len(rows), sum(rows.values()) % 2**64)

    def rows(self, start: int, end: int, replica: str, replicas: Sequence[str]) -> dict[str, int]:
        return self._rows(replica, start, end)


def _verifier(fake: FakeReplicas) -> Verifier:
    nodes = [NodeAccess(name=f"node{i + 2}", address=a) for i, a in enumerate((A, B, C))]
    cluster = ClusterConfig(id="unit", contact_points=[A], local_datacenter="dc1", nodes=nodes)
    spec = TableSpec("ks", "t", ("id",), ("id",), lambda r: str(r[0]), lambda r: 0, "count(*) AS n", False)
    cfg = VerifyConfig(chunks_per_range=4, fanout=4, leaf_rows=8, preview=False)
    return Verifier(cluster, None, spec, None, cfg, reader=fake)  # type: ignore[arg-type]


def _data(n: int) -> dict[str, int]:
    return {f"k{i:04d}": i * 7919 for i in range(n)}


@pytest.mark.fault(F.REPLICA_MISSED_WRITES)
def test_the_replica_that_differs_from_the_majority_is_named_with_its_keys() -> None:
    full = _data(400)
    # keys in different quarters of the ring (chunks): where two replicas differ in one chunk there is no
    # majority copy, and that chunk is unverified instead (next test)
    quarter = {k: (token_of(k) - MIN_TOKEN) * 4 // 2**64 for k in full}
    gone = [next(k for k in full if quarter[k] == q) for q in (0, 1)]
    other = next(k for k in full if quarter[k] == 2)
    lacking = {k: h for k, h in full.items() if k not in gone}
    changed = {**full, other: 1}
    fake = FakeReplicas({A: full, B: changed, C: lacking})
    rep = _verifier(fake).run(scope=RING, live={A, B, C})
    assert rep.verdict == "diverged" and rep.reference == "replica majority"
    by_replica: dict[str, Any] = {}
    for d in rep.diffs:
        slot = by_replica.setdefault(d.replica, {"missing": [], "different": []})
        slot["missing"] += d.missing
        slot["different"] += d.different
    assert by_replica == {
        B: {"missing": [], "different": [other]},
        C: {"missing": sorted(gone), "different": []},
    }
    # narrowing listed far fewer rows than the table holds
    assert 0 < rep.narrowing_rows_listed < 400


def test_a_chunk_where_no_copy_has_a_majority_is_unverified() -> None:
    full = _data(200)
    key = next(iter(full))
    rep = _verifier(FakeReplicas({A: full, B: {**full, key: 1}, C: {**full, key: 2}})).run(scope=RING, live={A, B, C})
    assert rep.verdict == "cannot_verify" and rep.diffs == []
    assert {u["reason"] for u in rep.unverified} == {"replicas disagree and no majority copy exists"}


def test_equal_replicas_converge_and_count_every_replica_row() -> None:
    full = _data(100)
    rep = _verifier(FakeReplicas({A: full, B: dict(full), C: dict(full)})).run(scope=RING, live={A, B, C})
    assert rep.verdict == "converged" and rep.diffs == [] and rep.rows_compared == 300


def test_an_unproven_replica_makes_it_cannot_verify_never_converged() -> None:
    full = _data(100)
    rep = _verifier(FakeReplicas({A: full, B: dict(full), C: dict(full)}, unproven=[C])).run(scope=RING, live={A, B, C})
    assert rep.verdict == "cannot_verify"
    assert {u["replica"] for u in rep.unverified} == {C}
    assert all(u["reason"] == "trace names another node" for u in rep.unverified)


def test_a_down_replica_is_cannot_verify_and_the_others_are_still_compared() -> None:
    full = _data(100)
    rep = _verifier(FakeReplicas({A: full, B: dict(full), C: {}})).run(scope=RING, live={A, B})
    assert rep.verdict == "cannot_verify" and rep.down == [C] and rep.rows_compared == 200


@pytest.mark.fault(F.REPLICA_MISSED_WRITES)
def test_past_the_key_cap_chunks_stay_unnarrowed_and_the_verdict_still_diverges() -> None:
    """A replica that lost most of its copy: naming every key would hold them all in memory; past the cap the
    remaining chunks are reported un-narrowed (a fix then repairs their ranges), never dropped."""
    full = _data(400)
    fake = FakeReplicas({A: full, B: dict(full), C: {}})
    v = _verifier(fake)
    v.config = VerifyConfig(chunks_per_range=4, fanout=4, leaf_rows=8, preview=False, max_diff_keys=50)
    rep = v.run(scope=RING, live={A, B, C})
    assert rep.verdict == "diverged" and {d.replica for d in rep.diffs} == {C}
    named = [d for d in rep.diffs if d.narrowed]
    assert len(rep.diffs) == 4 and 1 <= len(named) < 4
    assert sum(d.keys for d in rep.diffs) < 400 and all(d.keys == 0 for d in rep.diffs if not d.narrowed)
    assert any("max_diff_keys" in d.note for d in rep.diffs if not d.narrowed)
    assert any("only the first chunks were narrowed" in r for r in rep.reasons)


@given(
    st.text(min_size=1, max_size=20).filter(lambda t: "\x1f" not in t),
    st.text(max_size=20).filter(lambda t: "\x1f" not in t),
    st.sampled_from(["new", "paid", "shipped", "cancelled"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.integers(min_value=0, max_value=2**63 - 1),
)
def test_the_inlined_order_hash_is_the_canonical_row_hash_postgresql_also_computes(
    id_: str, customer: str, status: str, amount: int, updated_ms: int, version: int
) -> None:
    row = (id_, customer, status, amount, updated_ms, version)
    assert orders_spec(DomainConfig()).hash_of(row) == row_hash(canonical(*row))
    assert orders_spec(DomainConfig()).key_of(row) == id_
