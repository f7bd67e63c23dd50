"""A run's right to act, carried into every store it writes to: `check(conn)` runs inside the store's own
transaction, so the write commits only while the run still holds the incident's lease (true fencing: a takeover
waits for the write's row lock, and a write after the takeover is refused with StaleFencingToken)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _no_check(conn: Any) -> None:
    """A run that holds no incident (a scheduled repair): nothing to fence, its writes are recorded as its own."""


@dataclass(frozen=True)
class Fence:
    holder: str
    token: int | None  # None: not an incident's run
    incident_id: str | None
    check: Callable[[Any], None] = _no_check

    @classmethod
    def unfenced(cls, holder: str) -> Fence:
        return cls(holder, None, None)
