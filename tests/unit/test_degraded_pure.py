"""Pure logic of the degraded-mode domain: checksums, tokens, validation, coalescing (no servers)."""

from __future__ import annotations

import hashlib
import itertools
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cassandra.metadata import Murmur3Token
from pydantic import ValidationError

import cassandra_recovery.degraded.model as model_module
import cassandra_recovery.degraded.relay as relay_module
from cassandra_recovery.degraded.model import Order
from cassandra_recovery.degraded.outbox import OutboxEntry, QueueStats
from cassandra_recovery.degraded.relay import Relay, newest_per_key
from cassandra_recovery.degraded.service import validate_id
from cassandra_recovery.degraded.workload import WorkloadSpec
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.checksum import (
    MOD,
    SEP,
    ChunkSum,
    canonical,
    diff_keys,
    from_millis,
    row_hash,
    to_millis,
    token_chunks,
)
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN, token_of
from tests import faults as F

pytestmark = pytest.mark.area("degraded")

INJECTION_IDS = [
    "x'); DROP TABLE orders;--",
    'a" OR 1=1 --',
    "'; DELETE FROM cache_outbox; --",
    "%s %(id)s {orders}",
    "$$; TRUNCATE orders; $$",
    "back\\slash\\x00",
]


def _order(**kw: Any) -> Order:
    fields: dict[str, Any] = {
        "id": "order-1",
        "customer": "c",
        "status": "new",
        "amount_cents": 1,
        "updated_at": datetime(2026, 1, 2, 3, 4, 5, 6000, UTC),
    }
    return Order(**{**fields, **kw})


# --- logic.checksum -------------------------------------------------------------------------------------


def test_canonical_joins_fields_in_order_with_unit_separator() -> None:
    text = canonical("id", "cust", "paid", 1250, 1_700_000_000_123, 42)
    assert text == SEP.join(["id", "cust", "paid", "1250", "1700000000123", "42"])
    assert SEP == "\x1f"
    # field boundaries matter: moving a character between fields changes the text
    assert canonical("ab", "c", "s", 1, 2, 3) != canonical("a", "bc", "s", 1, 2, 3)


def test_row_hash_is_deterministic_signed_first_8_md5_bytes() -> None:
    text = canonical("order-1", "ünïcødé 'quoted'", "new", 0, -1, 7)
    expected = int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big", signed=True)
    assert row_hash(text) == row_hash(text) == expected
    hashes = [row_hash(f"row-{i}") for i in range(200)]
    assert all(-(2**63) <= h < 2**63 for h in hashes)
    # signed like PostgreSQL's bit(64)::bigint: both signs occur
    assert any(h < 0 for h in hashes) and any(h > 0 for h in hashes)
    assert len(set(hashes)) == len(hashes)


def test_chunk_sum_is_order_independent() -> None:
    hashes = [row_hash(f"k{i}") for i in range(6)]
    sums = {ChunkSum.of(p) for p in itertools.permutations(hashes)}
    assert len(sums) == 1
    (only,) = sums
    assert only.count == 6 and 0 <= only.checksum < MOD
    assert ChunkSum.of([]) == ChunkSum(0, 0)
    assert ChunkSum.of(iter(hashes)) == only  # any iterable, consumed once


def test_duplicated_row_changes_sum_where_xor_cancels() -> None:
    a, b = row_hash("a"), row_hash("b")
    assert a ^ b ^ b == a  # XOR: the duplicate pair vanishes
    with_dup, without = ChunkSum.of([a, b, b]), ChunkSum.of([a])
    assert with_dup.checksum != without.checksum
    # even with the count forced equal, a duplicate in place of a missing row changes the sum
    c = row_hash("c")
    assert ChunkSum.of([a, b, b]).checksum != ChunkSum.of([a, b, c]).checksum


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000])
def test_token_chunks_cover_ring_contiguously(n: int) -> None:
    chunks = token_chunks(n)
    assert len(chunks) == n
    assert chunks[0][0] == MIN_TOKEN and chunks[-1][1] == MAX_TOKEN
    for (_, hi), (lo, _) in itertools.pairwise(chunks):
        assert hi == lo  # (lo, hi]: no gap, no overlap
    assert all(lo < hi for lo, hi in chunks)
    # every key token falls in exactly one chunk
    for key in ["a", "order-000001", "日本語", "x'); DROP TABLE orders;--"]:
        t = token_of(key)
        assert sum(lo < t <= hi for lo, hi in chunks) == 1
    assert sum(lo < MAX_TOKEN <= hi for lo, hi in chunks) == 1


@pytest.mark.parametrize("n", [0, -1])
def test_token_chunks_rejects_non_positive(n: int) -> None:
    with pytest.raises(ValueError, match="chunks"):
        token_chunks(n)


def test_diff_keys() -> None:
    d = diff_keys({"a": 1, "b": 2, "c": 3, "e": 5}, {"b": 2, "c": 4, "d": 9, "e": 6})
    assert d.missing == ["a"]
    assert d.extra == ["d"]
    assert d.different == ["c", "e"]
    same = diff_keys({"a": 1}, {"a": 1})
    assert (same.missing, same.extra, same.different) == ([], [], [])


def test_to_millis_exact_where_float_timestamp_loses_a_millisecond() -> None:
    lossy = datetime(2004, 9, 8, 15, 49, 55, 705000, UTC)
    assert int(lossy.timestamp() * 1000) == 1_094_658_595_704  # the float path drops a millisecond
    assert to_millis(lossy) == 1_094_658_595_705
    assert from_millis(1_094_658_595_705) == lossy
    d = datetime(2026, 11, 26, 3, 30, 0, 640000, UTC)
    assert to_millis(d) == 1_795_663_800_640
    assert from_millis(to_millis(d)) == d


def test_to_millis_floors_microseconds_and_reads_naive_as_utc() -> None:
    d = datetime(2026, 11, 26, 3, 30, 0, 640999, UTC)
    assert to_millis(d) == 1_795_663_800_640
    assert to_millis(d.replace(tzinfo=None)) == to_millis(d)
    assert to_millis(d.astimezone(timezone(timedelta(hours=5, minutes=30)))) == to_millis(d)
    # before the epoch: floor, like PostgreSQL's floor(extract(epoch ...) * 1000)
    assert to_millis(datetime(1969, 12, 31, 23, 59, 59, 999500, UTC)) == -1
    assert from_millis(-1) == datetime(1969, 12, 31, 23, 59, 59, 999000, UTC)


def test_millis_round_trip_exact_over_many_values() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        ms = rng.randrange(0, 4_102_444_800_000)  # 1970..2100
        assert to_millis(from_millis(ms)) == ms


# --- logic.murmur3 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["", "a", "order-000001", "é", "日本語の注文", "emoji 🙂🚀", "x" * 300, *INJECTION_IDS],
)
def test_token_of_matches_driver(key: str) -> None:
    assert token_of(key) == Murmur3Token.from_key(key.encode("utf-8")).value
    assert MIN_TOKEN < token_of(key) <= MAX_TOKEN


# --- degraded.model.Order -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["", "x" * 129, 42, None, "tab\there", "nul\x00", "newline\n", "unit\x1fsep", "del\x7f", "c1\x85"],
)
def test_order_rejects_bad_ids(bad_id: object) -> None:
    with pytest.raises(ValidationError):
        _order(id=bad_id)


@pytest.mark.parametrize("good_id", [*INJECTION_IDS, "x" * 128, "注文-ё", "a"])
def test_order_accepts_sql_syntax_as_plain_text(good_id: str) -> None:
    o = _order(id=good_id)
    assert o.id == good_id
    assert o.payload()["id"] == good_id
    assert o.token == token_of(good_id)


def test_order_rejects_naive_datetime_and_control_chars_in_other_fields() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        _order(updated_at=datetime(2026, 1, 1, 12, 0, 0))
    with pytest.raises(ValidationError):
        _order(customer="evil\x1fcustomer")
    with pytest.raises(ValidationError):
        _order(status="new\n")
    with pytest.raises(ValidationError):
        _order(amount_cents=-1)
    with pytest.raises(ValidationError):
        _order(amount_cents="12")  # strict int
    with pytest.raises(ValidationError):
        _order(extra_field=1)


def test_order_truncates_to_milliseconds_in_utc() -> None:
    local = timezone(timedelta(hours=-7))
    o = _order(updated_at=datetime(2026, 3, 1, 10, 0, 0, 123456, local))
    assert o.updated_at == datetime(2026, 3, 1, 17, 0, 0, 123000, UTC)
    assert o.updated_at.utcoffset() == timedelta(0)
    assert o.payload()["updated_at_ms"] == to_millis(datetime(2026, 3, 1, 17, 0, 0, 123000, UTC))


def test_order_default_updated_at_is_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime(2026, 11, 26, 3, 30, 0, 640999, UTC)

    class FixedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> FixedDatetime:
            return fixed  # type: ignore[return-value]

    monkeypatch.setattr(model_module, "datetime", FixedDatetime)
    o = Order(id="x", customer="c", status="s", amount_cents=0)
    assert o.updated_at == datetime(2026, 11, 26, 3, 30, 0, 640000, UTC)
    monkeypatch.undo()
    # and with the real clock, the default always lands on a whole millisecond
    for _ in range(20):
        assert Order(id="x", customer="c", status="s", amount_cents=0).updated_at.microsecond % 1000 == 0


# --- degraded.service.validate_id -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "x" * 129, 7, None, b"bytes", "nul\x00byte", "line\nbreak"])
def test_validate_id_raises_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="invalid order id"):
        validate_id(bad)


@pytest.mark.parametrize("good", [*INJECTION_IDS, "x" * 128])
def test_validate_id_accepts_what_order_accepts(good: str) -> None:
    assert validate_id(good) == good == _order(id=good).id


# --- degraded.relay -------------------------------------------------------------------------------------


def _entry(seq: int, key: str, version: int) -> OutboxEntry:
    return OutboxEntry(seq, key, version, "upsert", {"id": key, "v": version}, 1)


@pytest.mark.fault(F.WRITES_OUT_OF_ORDER)
def test_newest_per_key_keeps_highest_version_whatever_the_order() -> None:
    entries = [_entry(1, "a", 10), _entry(2, "b", 5), _entry(3, "a", 30), _entry(4, "a", 20), _entry(5, "c", 1)]
    for perm in (entries, list(reversed(entries))):
        out = newest_per_key(perm)
        assert {k: e.version for k, e in out.items()} == {"a": 30, "b": 5, "c": 1}
        assert out["a"].seq == 3
    assert newest_per_key([]) == {}


class _FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


class _BackingOffOutbox:
    """First claim hands out one entry; afterwards one entry stays queued but backing off (not claimable)."""

    def __init__(self) -> None:
        self.claims = 0

    def claim(self, relay_id: str, limit: int | None = None) -> list[OutboxEntry]:
        self.claims += 1
        if self.claims > 200:
            raise AssertionError("drain polls without sleeping while entries back off")
        return [_entry(1, "a", 1)] if self.claims == 1 else []

    def mark_delivered(self, relay_id: str, seqs: list[int]) -> int:
        return len(seqs)

    def mark_failed(self, relay_id: str, seqs: list[int], error: str) -> tuple[int, int]:
        return len(seqs), 0

    def stats(self) -> QueueStats:
        return QueueStats(queued=1, delivered=1, dead=0, in_flight=0, oldest_queued_age_s=1.0, oldest_dead_age_s=0)


class _NullCache:
    def put(self, payload: dict[str, Any], version: int) -> None:
        pass

    def delete(self, order_id: str, version: int) -> None:
        pass


def test_drain_sleeps_when_remaining_entries_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeTime()
    monkeypatch.setattr(relay_module, "time", fake)
    outbox = _BackingOffOutbox()
    relay = Relay(outbox, _NullCache(), "r")  # type: ignore[arg-type]
    stats, total = relay.drain(timeout_s=10.0, idle_wait_s=0.5)
    assert stats.queued == 1  # deadline reached with the entry still backing off
    assert total.claimed == 1 and total.delivered == 1
    # every idle round between the first delivery and the deadline waited instead of polling in a hot loop
    assert len(fake.sleeps) == outbox.claims - 2 >= 1
    assert all(s == 0.5 for s in fake.sleeps)


# --- degraded.workload.WorkloadSpec ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"read_ratio": -0.1}, "read ratio"),
        ({"read_ratio": 1.5}, "read ratio"),
        ({"rate": 0}, "positive"),
        ({"rate": -5}, "positive"),
        ({"keys": 0}, "positive"),
        ({"duration_s": None, "operations": None}, "duration"),
    ],
)
def test_workload_spec_rejects(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WorkloadSpec(**kw)


def test_workload_spec_accepts_edges() -> None:
    assert WorkloadSpec(read_ratio=0).read_ratio == 0
    assert WorkloadSpec(read_ratio=1).read_ratio == 1
    spec = WorkloadSpec(duration_s=None, operations=10, keys=1)
    assert spec.operations == 10 and spec.duration_s is None
