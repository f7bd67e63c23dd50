"""Order-independent chunk checksums, encoded identically for PostgreSQL and Cassandra rows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN

MOD = 2**64
SEP = "\x1f"  # unit separator: cannot appear in validated text fields (control characters are refused)


def canonical(id_: str, customer: str, status: str, amount_cents: int, updated_ms: int, version: int) -> str:
    """The one text form of a row both sides hash (PostgreSQL builds the same with concat_ws)."""
    return SEP.join((id_, customer, status, str(amount_cents), str(updated_ms), str(version)))


def row_hash(text: str) -> int:
    """First 8 bytes of MD5 as a signed 64-bit integer: what PostgreSQL's ('x'||md5)::bit(64)::bigint gives.
    MD5 here is a checksum, not security."""
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big", signed=True)  # noqa: S324


@dataclass(frozen=True)
class ChunkSum:
    """Row count and the sum of row hashes modulo 2^64: unlike XOR, a duplicated row changes it."""

    count: int
    checksum: int

    @classmethod
    def of(cls, hashes: Iterable[int]) -> ChunkSum:
        n = 0
        total = 0
        for h in hashes:
            n += 1
            total += h
        return cls(n, total % MOD)


def token_chunks(chunks: int) -> list[tuple[int, int]]:
    """`chunks` ranges (start exclusive, end inclusive) covering the whole Murmur3 ring."""
    if chunks < 1:
        raise ValueError("chunks must be >= 1")
    span = MAX_TOKEN - MIN_TOKEN
    bounds = [MIN_TOKEN + span * i // chunks for i in range(chunks)] + [MAX_TOKEN]
    # The first range must include MIN_TOKEN+1..; no key has MIN_TOKEN (Cassandra maps it to MAX).
    return list(zip(bounds[:-1], bounds[1:], strict=True))


@dataclass(frozen=True)
class KeyDiff:
    missing: list[str]  # in the source of truth, not in the cache
    extra: list[str]  # in the cache, not in the source of truth
    different: list[str]  # in both, with different contents or versions


def diff_keys(truth: dict[str, int], cache: dict[str, int]) -> KeyDiff:
    """Key-level difference of two {key: row hash} maps, sorted for stable output."""
    return KeyDiff(
        missing=sorted(truth.keys() - cache.keys()),
        extra=sorted(cache.keys() - truth.keys()),
        different=sorted(k for k in truth.keys() & cache.keys() if truth[k] != cache[k]),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def to_millis(dt: datetime) -> int:
    """Exact milliseconds since the epoch (float timestamps lose the last millisecond now and then), in integer
    arithmetic on the date's fields: verification runs this once per row copy, and timedelta division costs five
    times as much."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)  # the driver returns naive UTC datetimes; PostgreSQL's side aware ones
    days = dt.toordinal() - _EPOCH_ORDINAL
    seconds = days * 86400 + dt.hour * 3600 + dt.minute * 60 + dt.second
    return seconds * 1000 + dt.microsecond // 1000


def from_millis(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
