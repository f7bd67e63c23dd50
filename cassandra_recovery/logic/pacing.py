"""A rows-per-second ceiling for reads that scan a production table (pure: the clock is passed in).

Readers report the rows they received; the pacer answers how long to wait so that the rows read since the start
never run ahead of `rows_per_s`. Several readers share one pacer, so the ceiling holds for the whole pass."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class RowPacer:
    rows_per_s: float  # 0: no ceiling
    started_at: float | None = None
    rows: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def took(self, rows: int, now: float) -> float:
        """Record `rows` just read; the seconds to wait before the next read (0 when within the ceiling)."""
        if self.rows_per_s <= 0:
            return 0.0
        with self._lock:
            if self.started_at is None:
                self.started_at = now
            self.rows += rows
            due = self.started_at + self.rows / self.rows_per_s  # when these rows are allowed to have been read
        return max(0.0, due - now)
