from __future__ import annotations

import random
import uuid
from collections.abc import Callable

import pytest
from cassandra.metadata import Murmur3Token

from cassandra_recovery.logic.ring import (
    ConsistentHashRing,
    FirstCharSharder,
    ModNSharder,
    Sharder,
    balance,
    moved_share,
    token,
)
from cassandra_recovery.logic.tokens import MIN_TOKEN

pytestmark = pytest.mark.area("assessment")

ORDER_KEYS = [f"order-{i:06d}" for i in range(50_000)]
_rng = random.Random(20240611)  # seeded: the same "random" uuids on every run
UUID_KEYS = [str(uuid.UUID(int=_rng.getrandbits(128), version=4)) for _ in range(50_000)]
KEY_SETS = {"order": ORDER_KEYS, "uuid": UUID_KEYS}


def names(n: int) -> list[str]:
    return [f"node{i}" for i in range(1, n + 1)]


def owners(sharder: Sharder, keys: list[str]) -> list[str]:
    return [sharder.node_for(k) for k in keys]


@pytest.mark.parametrize("key", ["", "a", "order-000123", "ключ", "x" * 100])
def test_token_is_the_driver_murmur3_token(key: str) -> None:
    assert token(key) == token(key.encode()) == Murmur3Token.from_key(key.encode()).value
    assert MIN_TOKEN < token(key) < 2**63


@pytest.mark.parametrize(
    "make",
    [
        lambda ms: ConsistentHashRing(ms),
        lambda ms: ConsistentHashRing(ms, vnodes=1),
        ModNSharder,
        FirstCharSharder,
    ],
    ids=["ring", "ring-1-vnode", "mod-n", "first-char"],
)
@pytest.mark.parametrize("keys", KEY_SETS.values(), ids=KEY_SETS.keys())
def test_lookups_are_deterministic_and_land_on_members(make: Callable[[list[str]], Sharder], keys: list[str]) -> None:
    sample = keys[:2_000] + ["", "Z", "9", "ü"]
    first, second = make(names(4)), make(names(4))
    assert owners(first, sample) == owners(first, sample) == owners(second, sample)
    assert set(owners(first, sample)) <= set(first.members) == set(names(4))
    assert [first.node_for(k.encode()) for k in sample] == owners(first, sample)


def test_a_point_owns_its_own_token_like_a_cassandra_node() -> None:
    # Cassandra: a node's token t owns (previous token, t], so a key hashing exactly onto a point belongs to it
    ring = ConsistentHashRing(["a", "b", "c"], vnodes=32)
    assert all(ring.node_for(f"{m}#{i}") == m for m in ring.members for i in range(32))


def test_ring_does_not_depend_on_the_order_members_arrive() -> None:
    built = ConsistentHashRing(["b", "c", "a"], vnodes=16)
    grown = ConsistentHashRing(vnodes=16)
    for m in ["c", "a", "b"]:
        grown.add(m)
    assert built.members == grown.members == ("a", "b", "c")
    assert owners(built, ORDER_KEYS[:5_000]) == owners(grown, ORDER_KEYS[:5_000])


@pytest.mark.parametrize(("n", "vnodes"), [(2, 256), (3, 256), (5, 256), (10, 256), (5, 1), (5, 16)])
@pytest.mark.parametrize("keys", KEY_SETS.values(), ids=KEY_SETS.keys())
def test_removing_a_member_moves_exactly_the_keys_it_owned(n: int, vnodes: int, keys: list[str]) -> None:
    sample = keys[:20_000]
    ring = ConsistentHashRing(names(n), vnodes=vnodes)
    before = owners(ring, sample)
    gone = names(n)[n // 2]
    ring.remove(gone)
    after = owners(ring, sample)
    moved = {k for k, b, a in zip(sample, before, after, strict=True) if b != a}
    assert moved == {k for k, b in zip(sample, before, strict=True) if b == gone}
    assert gone not in after and gone not in ring.members


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("keys", KEY_SETS.values(), ids=KEY_SETS.keys())
def test_adding_a_member_moves_about_its_fair_share_and_only_to_it(n: int, keys: list[str]) -> None:
    sample = keys[:20_000]
    ring = ConsistentHashRing(names(n))
    before = owners(ring, sample)
    ring.add("newcomer")
    after = owners(ring, sample)
    moved = [a for b, a in zip(before, after, strict=True) if b != a]
    assert set(moved) == {"newcomer"}
    fair = 1 / (n + 1)
    assert 0.5 * fair <= len(moved) / len(sample) <= 1.6 * fair
    assert moved_share(ConsistentHashRing(names(n)), ring, sample) == len(moved) / len(sample)


@pytest.mark.parametrize("n", [3, 5, 10])
@pytest.mark.parametrize("keys", KEY_SETS.values(), ids=KEY_SETS.keys())
def test_mod_n_moves_most_keys_when_a_member_is_added(n: int, keys: list[str]) -> None:
    sample = keys[:20_000]
    assert moved_share(ModNSharder(names(n)), ModNSharder([*names(n), "newcomer"]), sample) > 0.6


@pytest.mark.parametrize("n", [3, 5, 10])
@pytest.mark.parametrize("keys", KEY_SETS.values(), ids=KEY_SETS.keys())
def test_ring_with_256_vnodes_is_balanced(n: int, keys: list[str]) -> None:
    assert balance(ConsistentHashRing(names(n)), keys) < 1.25


@pytest.mark.parametrize("n", [3, 5, 10])
def test_first_char_sharding_skews_on_realistic_keys(n: int) -> None:
    # every "order-..." key starts with "o": one member gets everything, the rest nothing
    assert balance(FirstCharSharder(names(n)), ORDER_KEYS) == pytest.approx(n)
    assert balance(FirstCharSharder(names(n)), ORDER_KEYS) > 2


@pytest.mark.parametrize(
    ("key", "expected"),
    [("apple", "m1"), ("Melon", "m1"), ("nut", "m2"), ("zebra", "m2"), ("", "m1"), ("0", "m1"), ("1", "m2")],
)
def test_first_char_splits_the_alphabet_into_ranges(key: str, expected: str) -> None:
    assert FirstCharSharder(["m2", "m1"]).node_for(key) == expected


def test_balance_counts_members_without_keys() -> None:
    sharder = FirstCharSharder(["a", "b"])
    assert balance(sharder, ["x", "y"]) == 2.0
    assert balance(sharder, ["a", "z"]) == 1.0


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (lambda: ConsistentHashRing().node_for("k"), "no members"),
        (lambda: ConsistentHashRing(["a", "a"]), "duplicate member"),
        (lambda: ConsistentHashRing(["a", ""]), "non-empty"),
        (lambda: ConsistentHashRing(["a"], vnodes=0), "vnodes must be >= 1"),
        (lambda: ConsistentHashRing(["a"]).add("a"), "already on the ring"),
        (lambda: ConsistentHashRing(["a"]).add(""), "non-empty"),
        (lambda: ConsistentHashRing(["a"]).remove("b"), "not on the ring"),
        (lambda: ModNSharder([]), "at least one member"),
        (lambda: ModNSharder(["a", "a"]), "duplicate member"),
        (lambda: FirstCharSharder([]), "at least one member"),
        (lambda: FirstCharSharder([""]), "non-empty"),
        (lambda: balance(ModNSharder(["a"]), []), "at least one key"),
        (lambda: moved_share(ModNSharder(["a"]), ModNSharder(["b"]), []), "at least one key"),
    ],
)
def test_errors_are_clear(action: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        action()


def test_ring_empties_and_refills() -> None:
    ring = ConsistentHashRing(["a"])
    ring.remove("a")
    with pytest.raises(ValueError, match="no members"):
        ring.node_for("k")
    ring.add("b")
    assert ring.node_for("k") == "b" and ring.members == ("b",)
