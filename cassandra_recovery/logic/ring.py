"""Consistent-hash ring with virtual nodes on Cassandra's Murmur3 token space, plus baseline sharders to compare."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from cassandra.murmur3 import murmur3

from cassandra_recovery.logic.tokens import MIN_TOKEN

MAX_TOKEN = 2**63 - 1


def token(key: str | bytes) -> int:
    """Murmur3Partitioner token of `key` (str is UTF-8 encoded), the same value Cassandra computes."""
    h = int(murmur3(key.encode() if isinstance(key, str) else key))
    # Cassandra keeps MIN_TOKEN as the ring's "before everything" marker and maps that hash to MAX_TOKEN
    return MAX_TOKEN if h == MIN_TOKEN else h


class Sharder(Protocol):
    @property
    def members(self) -> tuple[str, ...]: ...

    def node_for(self, key: str | bytes) -> str: ...


def _checked(members: Iterable[str]) -> list[str]:
    names = list(members)
    if any(not m for m in names):
        raise ValueError("member names must be non-empty")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate member in {names!r}")
    return sorted(names)


class ConsistentHashRing:
    """Each member owns `vnodes` points; a key belongs to the first point at or after its token, wrapping around.

    That is Cassandra's rule (a token owns the range (previous token, token]), so ring points and keys can be
    compared with real node tokens. Adding or removing a member only moves the keys next to its own points.
    """

    def __init__(self, members: Iterable[str] = (), vnodes: int = 256) -> None:
        if vnodes < 1:
            raise ValueError(f"vnodes must be >= 1, got {vnodes}")
        self._vnodes = vnodes
        self._points_of: dict[str, list[int]] = {}
        # swapped in as one tuple so lookups never see a half-rebuilt ring (concurrent add/remove need a lock)
        self._table: tuple[list[int], list[str]] = ([], [])
        for member in _checked(members):
            self._points_of[member] = self._points(member)
        self._rebuild()

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(sorted(self._points_of))

    def add(self, member: str) -> None:
        if not member:
            raise ValueError("member names must be non-empty")
        if member in self._points_of:
            raise ValueError(f"member {member!r} is already on the ring")
        self._points_of[member] = self._points(member)
        self._rebuild()

    def remove(self, member: str) -> None:
        if member not in self._points_of:
            raise ValueError(f"member {member!r} is not on the ring (members: {list(self.members)})")
        del self._points_of[member]
        self._rebuild()

    def node_for(self, key: str | bytes) -> str:
        points, owners = self._table
        if not points:
            raise ValueError("the ring has no members")
        i = bisect.bisect_left(points, token(key))
        return owners[i if i < len(points) else 0]  # past the last point: wrap to the first

    def _points(self, member: str) -> list[int]:
        # the integer after the last '#' makes labels unique even when member names contain '#'
        return [token(f"{member}#{i}") for i in range(self._vnodes)]

    def _rebuild(self) -> None:
        # sorting on (point, member) breaks 64-bit collisions the same way whatever the order of adds
        pairs = sorted((p, m) for m, points in self._points_of.items() for p in points)
        self._table = ([p for p, _ in pairs], [m for _, m in pairs])


class _FixedSharder:
    """Members fixed at construction: the baselines are rebuilt, not mutated, when membership changes."""

    def __init__(self, members: Iterable[str]) -> None:
        self._members = _checked(members)
        if not self._members:
            raise ValueError(f"{type(self).__name__} needs at least one member")

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self._members)


class ModNSharder(_FixedSharder):
    """Baseline: token mod N over the sorted members; almost every key moves when N changes."""

    def node_for(self, key: str | bytes) -> str:
        return self._members[token(key) % len(self._members)]


class FirstCharSharder(_FixedSharder):
    """Baseline: the key's first character picks the member, a-z split into N contiguous ranges.

    Characters outside a-z (digits, punctuation, non-ASCII) go by ord modulo N and an empty key goes to the
    first member. Real keys share prefixes ("order-..."), which is why this skews.
    """

    def node_for(self, key: str | bytes) -> str:
        first = (key.decode("utf-8", "replace") if isinstance(key, bytes) else key)[:1]
        n = len(self._members)
        if not first:
            return self._members[0]
        # lower-casing only ASCII: some non-ASCII characters lower-case to two characters
        c = first.lower() if first.isascii() else first
        if "a" <= c <= "z":
            return self._members[(ord(c) - ord("a")) * n // 26]
        return self._members[ord(c) % n]


def balance(sharder: Sharder, keys: Iterable[str | bytes]) -> float:
    """Max load over mean load across all members (members with no keys count as load 0); 1.0 is perfect."""
    loads = Counter(sharder.node_for(k) for k in keys)
    total = sum(loads.values())
    if total == 0:
        raise ValueError("balance needs at least one key")
    mean = total / len(sharder.members)
    return max(loads.values()) / mean


def moved_share(before: Sharder, after: Sharder, keys: Iterable[str | bytes]) -> float:
    """Share of `keys` whose owner differs between two sharders (e.g. before and after a membership change)."""
    total = moved = 0
    for k in keys:
        total += 1
        moved += before.node_for(k) != after.node_for(k)
    if total == 0:
        raise ValueError("moved_share needs at least one key")
    return moved / total
