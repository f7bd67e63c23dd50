"""Replica placement per token range: SimpleStrategy, NetworkTopologyStrategy (racks, DCs) and ring coverage."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from cassandra_recovery.logic.hotspots import owner_of
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, token_of
from cassandra_recovery.logic.replication import (
    NetworkTopologyStrategy,
    Replication,
    RingToken,
    SimpleStrategy,
    TokenRange,
    range_of,
    ranges_replicated_by,
    replication_from,
    rf_by_dc,
    token_ranges,
)
from cassandra_recovery.logic.tokens import MIN_TOKEN, RING_SIZE, balanced_tokens
from cassandra_recovery.parsers.describecluster import parse_describecluster
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("assessment")

N2, N3, N4 = "127.0.0.2", "127.0.0.3", "127.0.0.4"
RACK = {N2: "rack1", N3: "rack2", N4: "rack3"}  # the lab's layout (nodetool status)
T0, T1, T2 = (tokens[0] for tokens in balanced_tokens(3))


def lab_ring(tokens_per_node: int = 1) -> list[RingToken]:
    tokens = balanced_tokens(3, tokens_per_node)
    return [RingToken(t, n, "dc1", RACK[n]) for n, ts in zip((N2, N3, N4), tokens, strict=True) for t in ts]


def nts(**rf: int) -> NetworkTopologyStrategy:
    return NetworkTopologyStrategy(rf)


def layout(ranges: list[TokenRange]) -> list[tuple[int, int, tuple[str, ...]]]:
    return [(r.start, r.end, r.replicas) for r in ranges]


@pytest.mark.parametrize("replication", [SimpleStrategy(3), nts(dc1=3)], ids=["simple", "nts"])
def test_three_nodes_one_token_rf3(replication: Replication) -> None:
    assert layout(token_ranges(lab_ring(), replication)) == [
        (T2, T0, (N2, N3, N4)),  # the wrap-around range comes first: (last token, first token]
        (T0, T1, (N3, N4, N2)),
        (T1, T2, (N4, N2, N3)),
    ]


@pytest.mark.parametrize("replication", [SimpleStrategy(2), nts(dc1=2)], ids=["simple", "nts"])
def test_three_nodes_one_token_rf2(replication: Replication) -> None:
    assert layout(token_ranges(lab_ring(), replication)) == [(T2, T0, (N2, N3)), (T0, T1, (N3, N4)), (T1, T2, (N4, N2))]


def test_three_nodes_four_tokens_nts_rf2_three_racks() -> None:
    ranges = token_ranges(lab_ring(4), nts(dc1=2))
    assert len(ranges) == 12
    nxt = {N2: N3, N3: N4, N4: N2}
    owners = [N2, N3, N4] * 4  # balanced tokens interleave the nodes around the ring
    # one rack per node, so NTS walks like SimpleStrategy: the owner then the next node clockwise
    assert [r.replicas for r in ranges] == [(o, nxt[o]) for o in owners]  # ordered by end token: owner first
    assert all(r.replicas[0] == owner_of(r.end, [(t.token, t.address) for t in lab_ring(4)]) for r in ranges)
    assert Counter(a for r in ranges for a in r.replicas) == {N2: 8, N3: 8, N4: 8}
    assert ranges == token_ranges(lab_ring(4), SimpleStrategy(2))
    assert len(ranges_replicated_by(ranges, [N3])) == 8
    assert len(ranges_replicated_by(ranges, [N3, N4])) == 12


def ring_of(*nodes: tuple[str, str, str]) -> list[RingToken]:
    """One token per (address, dc, rack), in ring order."""
    return [RingToken(i * 1000, a, dc, rack) for i, (a, dc, rack) in enumerate(nodes)]


RACKED = ring_of(("a1", "dc1", "A"), ("a2", "dc1", "A"), ("b1", "dc1", "B"), ("b2", "dc1", "B"))


def test_nts_prefers_racks_not_seen_yet() -> None:
    assert token_ranges(RACKED, SimpleStrategy(2))[0].replicas == ("a1", "a2")
    assert [r.replicas for r in token_ranges(RACKED, nts(dc1=2))] == [
        ("a1", "b1"),  # a2 is skipped: rack A already holds a replica
        ("a2", "b1"),
        ("b1", "a1"),  # wrapping around the ring
        ("b2", "a1"),
    ]


def test_nts_more_replicas_than_racks_fills_with_rack_repeats() -> None:
    # RF 3 over 2 racks: one rack repeat is allowed; Cassandra 5.0 places it where the walk meets it
    assert [r.replicas for r in token_ranges(RACKED, nts(dc1=3))] == [
        ("a1", "a2", "b1"),
        ("a2", "b1", "b2"),
        ("b1", "b2", "a1"),
        ("b2", "a1", "a2"),
    ]


def test_nts_datacenters() -> None:
    ring = ring_of(
        ("x1", "dc1", "r1"), ("y1", "dc2", "r1"), ("x2", "dc1", "r2"), ("y2", "dc2", "r1"), ("x3", "dc1", "r1")
    )
    ranges = token_ranges(ring, nts(dc1=2, dc2=1, dc3=2))  # dc3 has no node: no replicas there
    assert [r.replicas for r in ranges] == [
        ("x1", "y1", "x2"),
        ("y1", "x2", "x3"),  # y2 passed by: dc2 already has its replica
        ("x2", "y2", "x3"),
        ("y2", "x3", "x2"),  # x1 skipped: rack r1 of dc1 already holds one and dc1 has no rack repeat to spare
        ("x3", "y1", "x2"),
    ]
    for r in ranges:
        assert sum(a.startswith("x") for a in r.replicas) == 2
        assert sum(a.startswith("y") for a in r.replicas) == 1
        racks = {t.rack for t in ring if t.address in r.replicas and t.datacenter == "dc1"}
        assert racks == {"r1", "r2"}, r  # two dc1 replicas, two dc1 racks: one replica per rack


def test_nts_rf_above_node_count_takes_every_node_of_the_dc() -> None:
    ring = ring_of(("x1", "dc1", "r1"), ("y1", "dc2", "r1"), ("x2", "dc1", "r1"))
    assert [sorted(r.replicas) for r in token_ranges(ring, nts(dc1=5, dc2=1))] == [["x1", "x2", "y1"]] * 3
    assert [r.replicas for r in token_ranges(ring, nts(dc1=0, dc2=1))] == [("y1",)] * 3
    assert [r.replicas for r in token_ranges(ring, SimpleStrategy(5))][0] == ("x1", "y1", "x2")


def legacy_nts(ring: list[RingToken], first: int, rf: dict[str, int]) -> set[str]:
    """The pre-4.0 formulation: skip nodes of seen racks until every rack of the DC is seen, then fill from them."""
    racks = {dc: {t.rack for t in ring if t.datacenter == dc} for dc in rf}
    nodes = {dc: {t.address for t in ring if t.datacenter == dc} for dc in rf}
    chosen: dict[str, list[str]] = {dc: [] for dc in rf}
    seen: dict[str, set[str]] = {dc: set() for dc in rf}
    skipped: dict[str, list[str]] = {dc: [] for dc in rf}

    def full(dc: str) -> bool:
        return len(chosen[dc]) >= min(rf[dc], len(nodes[dc]))

    for t in ring[first:] + ring[:first]:
        dc = t.datacenter
        if dc not in rf or full(dc) or t.address in chosen[dc]:
            continue
        if seen[dc] == racks[dc]:
            chosen[dc].append(t.address)
        elif t.rack in seen[dc]:
            if t.address not in skipped[dc]:
                skipped[dc].append(t.address)
        else:
            chosen[dc].append(t.address)
            seen[dc].add(t.rack)
            if seen[dc] == racks[dc]:
                for s in skipped[dc]:
                    if not full(dc):
                        chosen[dc].append(s)
    return {a for dc in rf for a in chosen[dc]}


@pytest.mark.parametrize("seed", range(40))
def test_nts_picks_the_same_nodes_as_the_skip_and_fill_formulation(seed: int) -> None:
    rng = random.Random(seed)
    nodes = [(f"n{i}", rng.choice(["dc1", "dc2"]), rng.choice(["r1", "r2", "r3"])) for i in range(rng.randint(2, 9))]
    tokens = rng.sample(range(-1000, 1000), len(nodes) * rng.randint(1, 4))
    ring = sorted(RingToken(tok, *nodes[i % len(nodes)]) for i, tok in enumerate(tokens))
    rf = {"dc1": rng.randint(1, 4), "dc2": rng.randint(0, 3)}
    for i, r in enumerate(token_ranges(ring, nts(**rf))):
        assert set(r.replicas) == legacy_nts(ring, i, {dc: f for dc, f in rf.items() if f > 0}), (ring, rf, r)
        assert len(set(r.replicas)) == len(r.replicas)


@pytest.mark.parametrize("tokens_per_node", [1, 4, 16])
def test_ranges_cover_the_ring_exactly_once(tokens_per_node: int) -> None:
    ring = lab_ring(tokens_per_node)
    ranges = token_ranges(ring, nts(dc1=2))
    assert sum(r.width() for r in ranges) == RING_SIZE
    assert sum(r.wraps for r in ranges) == 1
    assert [r.end for r in ranges] == sorted(t.token for t in ring)
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:], strict=False))
    probes = [MIN_TOKEN, MIN_TOKEN + 1, MAX_TOKEN, 0, *(token_of(f"k{i}") for i in range(300))]
    probes += [t.token + d for t in ring for d in (-1, 0, 1) if MIN_TOKEN <= t.token + d <= MAX_TOKEN]
    pairs = [(t.token, t.address) for t in ring]
    for p in probes:
        holders = [r for r in ranges if r.contains(p)]
        assert len(holders) == 1, p
        assert range_of(p, ranges) == holders[0]
        assert holders[0].replicas[0] == owner_of(p, pairs)  # the primary replica is hotspots' owner


def test_single_token_ring_is_one_whole_ring_range() -> None:
    [r] = token_ranges([(42, N2, "dc1", "rack1")], SimpleStrategy(3))
    assert (r.start, r.end, r.replicas, r.wraps, r.width()) == (42, 42, (N2,), True, RING_SIZE)
    assert r.contains(MIN_TOKEN) and r.contains(42) and r.contains(MAX_TOKEN)


def test_plain_tuples_work_as_ring_tokens() -> None:
    plain = [(t.token, t.address, t.datacenter, t.rack) for t in reversed(lab_ring(2))]  # any order
    assert token_ranges(plain, nts(dc1=2)) == token_ranges(lab_ring(2), nts(dc1=2))


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        ([], "no tokens"),
        ([(1, N2, "dc1", "r1"), (1, N3, "dc1", "r1")], "held by both"),
        ([(1, N2, "dc1", "r1"), (2, N2, "dc1", "r2")], "two locations"),
        ([(2**63, N2, "dc1", "r1")], "Murmur3 tokens"),
    ],
)
def test_bad_rings(ring: list[tuple[int, str, str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        token_ranges(ring, SimpleStrategy(1))


def test_replication_from_describecluster_fixture() -> None:
    keyspaces = parse_describecluster(load_fixture("describecluster_node3_down").stdout).keyspaces
    parsed = {ks: replication_from(k.strategy, k.options) for ks, k in keyspaces.items()}
    assert parsed == {
        "system_traces": SimpleStrategy(2),
        "system_distributed": SimpleStrategy(3),
        "system_auth": SimpleStrategy(1),
        "fixtures": NetworkTopologyStrategy({"dc1": 3}),
        "system_schema": None,
        "system": None,
    }


@pytest.mark.parametrize(
    ("strategy", "options", "expected"),
    [
        ("org.apache.cassandra.locator.SimpleStrategy", {"class": "x", "replication_factor": "2"}, SimpleStrategy(2)),
        ("NetworkTopologyStrategy", {"dc1": "3/1", "dc2": "0"}, NetworkTopologyStrategy({"dc1": 3, "dc2": 0})),
        ("EverywhereStrategy", {}, None),
    ],
)
def test_replication_from(strategy: str, options: dict[str, str], expected: Replication | None) -> None:
    assert replication_from(strategy, options) == expected


@pytest.mark.parametrize(
    ("strategy", "options", "message"),
    [
        ("OldNetworkTopologyStrategy", {}, "unknown replication strategy"),
        ("SimpleStrategy", {}, "not a non-negative integer"),
        ("NetworkTopologyStrategy", {"dc1": "three"}, "dc1='three'"),
    ],
)
def test_replication_from_rejects(strategy: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replication_from(strategy, options)


def test_rf_by_dc() -> None:
    assert rf_by_dc(SimpleStrategy(3), "dc1") == {"dc1": 3}
    assert rf_by_dc(nts(dc1=3, dc2=0, dc3=2), "dc1") == {"dc1": 3, "dc3": 2}
