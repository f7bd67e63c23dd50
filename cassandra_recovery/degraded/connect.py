"""Connecting to the Cassandra cache without blocking the service: in the background, retried, with the reason.

The order service must accept writes (PostgreSQL) and serve reads (PostgreSQL fallback) while every Cassandra
node is down or frozen, so nothing on its start-up or request path waits for a driver connect (a frozen node costs
a full connect_timeout, plus the schema agreement wait after DDL). Until the first connect succeeds, cache calls
fail at once with CacheUnavailable: reads fall back, the relay backs off, writes never touch Cassandra.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cassandra_recovery.errors import RecoveryError

T = TypeVar("T")


class CacheUnavailable(RecoveryError):
    """The Cassandra cache is not connected (yet): the message says why, in one line."""


def _spawn(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="cassandra-connect", daemon=True).start()


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


class BackgroundConnect(Generic[T]):
    """`connect()` run once successfully, off the caller's thread; attempts at most every `retry_s`."""

    def __init__(
        self,
        connect: Callable[[], T],
        what: str = "Cassandra",
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        spawn: Callable[[Callable[[], None]], None] = _spawn,
    ) -> None:
        self._connect, self._what, self._retry_s, self._clock, self._spawn = connect, what, retry_s, clock, spawn
        self._lock = threading.Lock()
        self._value: T | None = None
        self._error: str | None = None
        self._attempting = False
        self._last_attempt: float | None = None

    @property
    def ready(self) -> bool:
        return self._value is not None

    def start(self) -> None:
        """Begin an attempt unless connected, one is running, or the last one failed less than retry_s ago."""
        with self._lock:
            due = self._last_attempt is None or self._clock() - self._last_attempt >= self._retry_s
            if self._value is not None or self._attempting or not due:
                return
            self._attempting, self._last_attempt = True, self._clock()
        self._spawn(self._attempt)

    def _attempt(self) -> None:
        try:
            value = self._connect()
        except Exception as e:  # any driver error: remembered for the message, tried again later
            with self._lock:
                self._error, self._attempting = _one_line(e), False
            return
        with self._lock:
            self._value, self._error, self._attempting = value, None, False

    def get(self) -> T:
        """The connected value, or CacheUnavailable at once (starting an attempt when one is due)."""
        value = self._value
        if value is not None:
            return value
        self.start()
        raise CacheUnavailable(f"{self._what} not connected yet: {self._error or 'connecting in the background'}")

    def connect_now(self) -> T:
        """Connect in the caller's thread (tools that need Cassandra to do anything); CacheUnavailable on failure."""
        if self._value is None:
            try:
                value = self._connect()
            except Exception as e:
                raise CacheUnavailable(f"cannot reach {self._what}: {_one_line(e)}") from e
            with self._lock:
                self._value, self._error = value, None
        assert self._value is not None  # noqa: S101 - set above
        return self._value
