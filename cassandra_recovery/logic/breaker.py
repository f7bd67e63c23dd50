"""A circuit breaker that opens on consecutive failures or on a failure rate over a sliding time window."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import ParamSpec, TypeVar

from cassandra_recovery.errors import RecoveryError

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_Changes = list[tuple[BreakerState, BreakerState]]  # transitions to report once the lock is released


class BreakerOpenError(RecoveryError):
    """The breaker refused the call; the wrapped function was not called."""

    def __init__(self, name: str, state: BreakerState) -> None:
        self.name = name
        self.state = state
        super().__init__(f"circuit breaker {name!r} is {state}: call not attempted")


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5  # consecutive failures that open the breaker
    failure_rate: float = 0.5  # failed / calls in the window that opens it...
    window_s: float = 10.0
    min_calls: int = 20  # ...once the window holds at least this many calls
    open_for_s: float = 5.0  # cool-down before a half-open probe
    probe_timeout_s: float | None = None  # None: open_for_s

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_calls < 1:
            raise ValueError("failure_threshold and min_calls must be at least 1")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be in (0, 1], got {self.failure_rate}")
        # zero durations would make every probe stale at once or the window empty
        for name in ("window_s", "open_for_s", "probe_timeout_s"):
            if (value := getattr(self, name)) is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")

    @property
    def effective_probe_timeout_s(self) -> float:
        return self.open_for_s if self.probe_timeout_s is None else self.probe_timeout_s


@dataclass(frozen=True)
class BreakerSnapshot:
    state: BreakerState
    consecutive_failures: int
    window_calls: int
    window_failures: int
    opened_at: float | None  # clock time of the latest opening; None while CLOSED
    times_opened: int
    calls_rejected: int


def _any_exception(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


StateChange = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """Thread-safe; transitions happen inside allow()/record_*(), never on a timer."""

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        name: str = "breaker",
        clock: Callable[[], float] = time.monotonic,
        is_failure: Callable[[BaseException], bool] = _any_exception,
        on_state_change: StateChange | None = None,
    ) -> None:
        self.config = config or BreakerConfig()
        self.name = name
        self._clock = clock
        self._is_failure = is_failure
        self._on_state_change = on_state_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        # bumped on every transition so call() can drop outcomes of calls admitted in an earlier state
        self._generation = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._window_failures = 0
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probe_started: float | None = None  # not None while the half-open probe is in flight
        self._times_opened = 0
        self._rejected = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            self._prune(self._clock())
            counts = (self._consecutive, len(self._window), self._window_failures)
            return BreakerSnapshot(self._state, *counts, self._opened_at, self._times_opened, self._rejected)

    def allow(self) -> bool:
        return self._admit() is not None

    def record_success(self) -> None:
        self._record(True, None)

    def record_failure(self) -> None:
        self._record(False, None)

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        token = self._admit()
        if token is None:
            raise BreakerOpenError(self.name, self._state)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if self._is_failure(exc):
                self._record(False, token)
            elif isinstance(exc, Exception):
                self._record(True, token)  # the backend answered, e.g. a rejected query
            else:
                self._release_probe(token)  # KeyboardInterrupt etc. say nothing about the backend
            raise
        self._record(True, token)
        return result

    # --- internals: _admit, _record and _release_probe take the lock; the helpers after them need it held ---

    def _admit(self) -> int | None:
        changes: _Changes = []
        with self._lock:
            now = self._clock()
            probe_started = self._probe_started
            if probe_started is not None and now - probe_started > self.config.effective_probe_timeout_s:
                self._open(now, changes)  # the probe's caller never reported back (crashed or hung)
            opened_at = self._opened_at
            if self._state is BreakerState.OPEN and opened_at is not None and now - opened_at >= self.config.open_for_s:
                self._move(BreakerState.HALF_OPEN, changes)
            token: int | None = self._generation
            if self._state is BreakerState.HALF_OPEN and self._probe_started is None:
                self._probe_started = now
            elif self._state is not BreakerState.CLOSED:
                self._rejected += 1
                token = None
        self._notify(changes)
        return token

    def _record(self, ok: bool, token: int | None) -> None:
        changes: _Changes = []
        with self._lock:
            # a slow call admitted while CLOSED must not decide a later half-open probe
            if token is not None and token != self._generation:
                return
            now = self._clock()
            if self._state is BreakerState.HALF_OPEN:
                if self._probe_started is not None:
                    if ok:
                        self._close(changes)
                    else:
                        self._open(now, changes)
            elif self._state is BreakerState.CLOSED:
                self._window.append((now, ok))
                self._window_failures += int(not ok)
                self._consecutive = 0 if ok else self._consecutive + 1
                self._prune(now)
                calls, cfg = len(self._window), self.config
                by_rate = calls >= cfg.min_calls and self._window_failures >= cfg.failure_rate * calls
                if not ok and (self._consecutive >= cfg.failure_threshold or by_rate):
                    self._open(now, changes)
            # OPEN: a late result of a call admitted before opening; the cool-down stands
        self._notify(changes)

    def _release_probe(self, token: int) -> None:
        with self._lock:
            if token == self._generation and self._state is BreakerState.HALF_OPEN:
                self._probe_started = None  # let the next allow() send a fresh probe

    def _prune(self, now: float) -> None:
        horizon = now - self.config.window_s
        while self._window and self._window[0][0] < horizon:
            _, ok = self._window.popleft()
            self._window_failures -= int(not ok)

    def _open(self, now: float, changes: _Changes) -> None:
        self._opened_at = now
        self._times_opened += 1
        self._move(BreakerState.OPEN, changes)

    def _close(self, changes: _Changes) -> None:
        self._window.clear()
        self._window_failures = 0
        self._consecutive = 0
        self._opened_at = None
        self._move(BreakerState.CLOSED, changes)

    def _move(self, new: BreakerState, changes: _Changes) -> None:
        changes.append((self._state, new))
        self._state = new
        self._generation += 1
        self._probe_started = None  # any transition ends the probe, if one was out

    def _notify(self, changes: _Changes) -> None:
        # outside the lock, so a callback may read snapshot() without deadlocking
        if self._on_state_change is None:
            return
        for old, new in changes:
            try:
                self._on_state_change(old, new)
            except Exception:
                # an observability bug must not break the read path it observes
                log.exception("on_state_change callback of breaker %r failed (%s -> %s)", self.name, old, new)
