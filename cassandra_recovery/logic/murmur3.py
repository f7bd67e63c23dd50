"""Cassandra's Murmur3 token of a single text partition key (what `token(id)` returns in CQL)."""

from __future__ import annotations

from cassandra.murmur3 import murmur3

MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1


def token_of(key: str) -> int:
    """Token of a text partition key: Murmur3 over its UTF-8 bytes; Long.MIN_VALUE maps to MAX (as Cassandra)."""
    t: int = murmur3(key.encode("utf-8"))
    return MAX_TOKEN if t == MIN_TOKEN else t
