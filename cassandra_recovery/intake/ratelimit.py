"""Token buckets per key (a sender's credential), on an injected clock (pure apart from the dict it keeps)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate` tokens a second up to `burst`; each request takes one."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0.0 when allowed (a token is taken), else the seconds until one is available."""
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per key; the least recently seen keys are forgotten beyond `max_clients`, which bounds
    memory (a forgotten client starts again with a full bucket)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float], max_clients: int = 10_000) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate must be > 0, burst and max_clients >= 1")
        self.rate, self.burst, self.clock, self.max_clients = rate, burst, clock, max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client: str) -> float:
        """0.0 when the request may proceed, else seconds to wait (for Retry-After)."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop(client, None) or TokenBucket(self.rate, self.burst, float(self.burst), now)
            self._buckets[client] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return bucket.take(now)
