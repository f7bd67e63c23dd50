"""Triggers the detector confirmed but could not hand over (PostgreSQL or Prefect away while it opened the
incident): kept and offered again with a growing back-off until the handler succeeds. A confirmed node is not
confirmed a second time by the state machine, so a trigger dropped here would be an outage nobody handles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Pending(Generic[T]):
    item: T
    context: dict[str, Any]
    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""


@dataclass
class PendingTriggers(Generic[T]):
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    waiting: list[Pending[T]] = field(default_factory=list)

    def due(self, now: float) -> list[Pending[T]]:
        return [p for p in self.waiting if p.next_at <= now]

    def failed(self, pending: Pending[T], now: float, error: str) -> float:
        """Keep it (once) for another try; the delay until then."""
        if pending not in self.waiting:
            self.waiting.append(pending)
        pending.attempts += 1
        delay = min(self.max_delay_s, self.first_delay_s * float(2 ** (pending.attempts - 1)))
        pending.next_at, pending.last_error = now + delay, error[:500]
        return delay

    def handed_over(self, pending: Pending[T]) -> None:
        if pending in self.waiting:
            self.waiting.remove(pending)
