"""Replica placement per token range (pure), the way Cassandra's SimpleStrategy and NetworkTopologyStrategy do it.

A ring token owns the range (previous ring token, token] (see hotspots.owner_of); the replicas of that range are found
by walking the ring clockwise from the range's end token. Ranges and replicas are what a repair is scoped to, and,
with the set of live nodes, which consistency levels each range can still serve (ranges_at_risk).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from cassandra_recovery.logic.tokens import MIN_TOKEN, RING_SIZE


class RingToken(NamedTuple):
    """One token of one node; a plain (token, address, datacenter, rack) tuple works wherever this is expected."""

    token: int
    address: str
    datacenter: str
    rack: str


@dataclass(frozen=True)
class SimpleStrategy:
    replication_factor: int


@dataclass(frozen=True)
class NetworkTopologyStrategy:
    rf_by_dc: Mapping[str, int]


Replication = SimpleStrategy | NetworkTopologyStrategy


@dataclass(frozen=True)
class TokenRange:
    """The tokens t with start < t <= end, wrapping past the top of the ring when end <= start.

    start == end (a ring of one token) is the whole ring. Replicas are in placement order: the primary first.
    """

    start: int
    end: int
    replicas: tuple[str, ...]

    @property
    def wraps(self) -> bool:
        return self.end <= self.start

    def contains(self, token: int) -> bool:
        if self.start == self.end:
            return True
        if self.wraps:
            return token > self.start or token <= self.end
        return self.start < token <= self.end

    def width(self) -> int:
        """Number of tokens in the range (RING_SIZE for the whole ring)."""
        return (self.end - self.start) % RING_SIZE or RING_SIZE


def replication_from(strategy: str, options: Mapping[str, str]) -> Replication | None:
    """Parse a keyspace's replication as `nodetool describecluster` or system_schema print it.

    `strategy` may be the short or the fully qualified class name; a "class" key in `options` is ignored. Returns
    None for LocalStrategy and EverywhereStrategy: node-local (or everywhere) data that no range repair is scoped to.
    """
    name = strategy.rsplit(".", 1)[-1]
    opts = {k: v for k, v in options.items() if k != "class"}
    if name in ("LocalStrategy", "EverywhereStrategy"):
        return None
    if name == "SimpleStrategy":
        return SimpleStrategy(_factor("replication_factor", opts.get("replication_factor", "")))
    if name == "NetworkTopologyStrategy":
        return NetworkTopologyStrategy({dc: _factor(dc, rf) for dc, rf in opts.items()})
    raise ValueError(f"unknown replication strategy {strategy!r} (expected SimpleStrategy or NetworkTopologyStrategy)")


def _factor(key: str, text: str) -> int:
    # "3/1" is 3 replicas of which 1 transient: all 3 hold a copy of the range
    full = text.split("/", 1)[0].strip()
    if not full.isdigit():
        raise ValueError(f"replication factor {key}={text!r} is not a non-negative integer")
    return int(full)


def rf_by_dc(replication: Replication, local_dc: str) -> dict[str, int]:
    """Replication factor per datacenter, as consistency levels need it.

    SimpleStrategy has one factor for the whole ring. Cassandra then uses that factor for the LOCAL_* levels and
    counts the local datacenter's live replicas, which {local_dc: rf} reproduces; in a multi-DC ring EACH_QUORUM on
    a SimpleStrategy keyspace is then only checked in local_dc (Cassandra checks QUORUM over all replicas).
    """
    if isinstance(replication, SimpleStrategy):
        return {local_dc: replication.replication_factor}
    return {dc: rf for dc, rf in replication.rf_by_dc.items() if rf > 0}


def _sorted(ring: Iterable[tuple[int, str, str, str]]) -> list[RingToken]:
    tokens = sorted(RingToken(*t) for t in ring)
    if not tokens:
        raise ValueError("the ring has no tokens")
    for prev, cur in zip(tokens, tokens[1:], strict=False):
        if prev.token == cur.token:
            raise ValueError(f"token {cur.token} is held by both {prev.address} and {cur.address}")
    where: dict[str, tuple[str, str]] = {}
    for t in tokens:
        if where.setdefault(t.address, (t.datacenter, t.rack)) != (t.datacenter, t.rack):
            raise ValueError(f"{t.address} is listed in two locations: {where[t.address]} and {(t.datacenter, t.rack)}")
    if tokens[0].token < MIN_TOKEN or tokens[-1].token >= MIN_TOKEN + RING_SIZE:
        raise ValueError("ring tokens must be Murmur3 tokens in [-2^63, 2^63)")
    return tokens


def _walk(tokens: Sequence[RingToken], first: int) -> Iterable[RingToken]:
    """Every ring token once, clockwise from index `first`."""
    yield from tokens[first:]
    yield from tokens[:first]


def _simple(tokens: Sequence[RingToken], first: int, rf: int) -> tuple[str, ...]:
    replicas: list[str] = []
    for t in _walk(tokens, first):
        if len(replicas) >= rf:
            break
        if t.address not in replicas:
            replicas.append(t.address)
    return tuple(replicas)


def _nts(tokens: Sequence[RingToken], first: int, factors: Mapping[str, int]) -> tuple[str, ...]:
    """Cassandra 4.0+/5.0 NetworkTopologyStrategy.calculateNaturalReplicas.

    Per datacenter, a node from a rack not seen yet is always taken; a node from a seen rack only while the DC
    still has rack repeats to spare (rf - racks in the DC), so every rack gets a replica before any rack gets two
    when RF <= racks. This picks the same nodes as the older formulation (skip nodes of seen racks until every rack
    of the DC is seen, then fill from the skipped ones in ring order); the order differs only in where the rack
    repeats sit, and here it is ring-encounter order, as Cassandra 5.0 lists replicas.
    """
    nodes_in: dict[str, set[str]] = {}
    racks_in: dict[str, set[str]] = {}
    for t in tokens:
        nodes_in.setdefault(t.datacenter, set()).add(t.address)
        racks_in.setdefault(t.datacenter, set()).add(t.rack)
    rf_left: dict[str, int] = {}
    repeats: dict[str, int] = {}
    for dc, rf in factors.items():
        if rf > 0 and dc in nodes_in:
            rf_left[dc] = min(rf, len(nodes_in[dc]))
            repeats[dc] = rf - len(racks_in[dc])
    replicas: list[str] = []
    seen_racks: set[tuple[str, str]] = set()
    to_fill = len(rf_left)
    for t in _walk(tokens, first):
        if to_fill == 0:
            break
        dc = t.datacenter
        if rf_left.get(dc, 0) == 0 or t.address in replicas:
            continue
        if (dc, t.rack) in seen_racks:
            if repeats[dc] <= 0:
                continue  # the remaining replicas must go to racks not seen yet
            repeats[dc] -= 1
        seen_racks.add((dc, t.rack))
        replicas.append(t.address)
        rf_left[dc] -= 1
        to_fill -= rf_left[dc] == 0
    return tuple(replicas)


def token_ranges(ring: Iterable[tuple[int, str, str, str]], replication: Replication) -> list[TokenRange]:
    """One TokenRange per ring token, ordered by end token: the first is the wrap-around (last token, first token].

    NTS datacenters with no node in the ring get no replicas (Cassandra skips them); an RF above a DC's node
    count places one replica on each of its nodes.
    """
    tokens = _sorted(ring)
    out: list[TokenRange] = []
    for i, t in enumerate(tokens):
        if isinstance(replication, SimpleStrategy):
            replicas = _simple(tokens, i, replication.replication_factor)
        else:
            replicas = _nts(tokens, i, replication.rf_by_dc)
        out.append(TokenRange(tokens[i - 1].token, t.token, replicas))
    return out


def range_of(token: int, ranges: Sequence[TokenRange]) -> TokenRange:
    """The range (from token_ranges, ordered by end) holding `token`: the first whose end is >= it, wrapping."""
    if not ranges:
        raise ValueError("no ranges")
    i = bisect.bisect_left([r.end for r in ranges], token)
    return ranges[i if i < len(ranges) else 0]


def ranges_replicated_by(ranges: Iterable[TokenRange], addresses: Iterable[str]) -> list[TokenRange]:
    """The ranges of which any of `addresses` holds a replica, in the given order."""
    wanted = set(addresses)
    return [r for r in ranges if wanted.intersection(r.replicas)]


# Availability: which ranges can still serve each consistency level with the replicas that are up.


class ConsistencyLevel(StrEnum):
    ONE = "ONE"
    TWO = "TWO"
    THREE = "THREE"
    QUORUM = "QUORUM"
    LOCAL_ONE = "LOCAL_ONE"
    LOCAL_QUORUM = "LOCAL_QUORUM"
    EACH_QUORUM = "EACH_QUORUM"
    ALL = "ALL"


@dataclass(frozen=True)
class Requirement:
    """Live replicas a level needs: `total` in any datacenter, and at least `per_dc[dc]` in each listed one."""

    total: int = 0
    per_dc: Mapping[str, int] = field(default_factory=dict)

    def met(self, live_by_dc: Mapping[str, int]) -> bool:
        in_dcs = all(live_by_dc.get(dc, 0) >= n for dc, n in self.per_dc.items())
        return sum(live_by_dc.values()) >= self.total and in_dcs


def _quorum(rf: int) -> int:
    return rf // 2 + 1


def required(cl: ConsistencyLevel, rf_by_dc: Mapping[str, int], local_dc: str) -> Requirement:
    """Cassandra's blockFor: QUORUM and ALL over the sum of all DCs' factors, LOCAL_* in local_dc only."""
    total = sum(rf_by_dc.values())
    anywhere = {"ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": _quorum(total), "ALL": total}
    if cl in anywhere:
        return Requirement(total=anywhere[cl])
    if cl is ConsistencyLevel.EACH_QUORUM:
        return Requirement(per_dc={dc: _quorum(rf) for dc, rf in rf_by_dc.items()})
    local = 1 if cl is ConsistencyLevel.LOCAL_ONE else _quorum(rf_by_dc.get(local_dc, 0))
    return Requirement(per_dc={local_dc: local})


def ranges_at_risk(
    ranges: Iterable[TokenRange], live: set[str], rf_by_dc: Mapping[str, int], dc_of: Mapping[str, str], local_dc: str
) -> dict[ConsistencyLevel, list[TokenRange]]:
    """Per level, the ranges whose live replicas cannot meet it (requests there fail with Unavailable)."""
    needs = {cl: required(cl, rf_by_dc, local_dc) for cl in ConsistencyLevel}
    out: dict[ConsistencyLevel, list[TokenRange]] = {cl: [] for cl in ConsistencyLevel}
    for r in ranges:
        live_by_dc: dict[str, int] = {}
        for a in r.replicas:
            if a not in dc_of:
                raise ValueError(f"replica {a} has no datacenter in dc_of")
            if a in live:
                live_by_dc[dc_of[a]] = live_by_dc.get(dc_of[a], 0) + 1
        for cl, need in needs.items():
            if not need.met(live_by_dc):
                out[cl].append(r)
    return out
