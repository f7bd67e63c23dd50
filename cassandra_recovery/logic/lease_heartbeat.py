"""When a lease holder must stop itself (pure): before its lease can lapse unnoticed.

The holder renews every `every_s` for `ttl_s`. A renewal that fails (PostgreSQL unreachable) is retried at the
next beat; once the next beat would come after the last renewal's TTL ran out, another run may take the incident
over at any moment, so the holder fences itself instead of acting on without a lease it can prove."""

from __future__ import annotations


def check_heartbeat(every_s: float, ttl_s: float) -> None:
    """A TTL that leaves room for two missed beats: one PostgreSQL blip never fences a healthy holder."""
    if not every_s > 0 or not ttl_s > 0:
        raise ValueError(f"lease heartbeat and TTL must be positive, got every {every_s}s, TTL {ttl_s}s")
    if ttl_s < 3 * every_s:
        raise ValueError(f"lease TTL {ttl_s}s must be at least 3 heartbeats ({3 * every_s}s)")


def must_fence(last_renewed: float, now: float, every_s: float, ttl_s: float) -> bool:
    """True when the lease renewed at `last_renewed` could lapse before the next beat (monotonic seconds)."""
    return now + every_s >= last_renewed + ttl_s
