"""What one probe of a node's native port found: the detector's input, apart from the socket that took it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeResult:
    address: str
    ok: bool
    latency_ms: float | None
    error: str | None = None
