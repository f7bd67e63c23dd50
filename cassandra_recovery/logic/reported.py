"""Which nodes an incident's triggers reported down (pure): a node that is back by the time of assessment
still missed writes while it was away, so the pipeline owes it hint replay and verification."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


def reported_down(trigger: Mapping[str, Any] | None, events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Nodes named by the opening trigger and by the triggers that joined it, in first-seen order; a resolved
    alert reports a recovery, not a failure, so it adds nothing."""
    docs = [trigger or {}, *(e.get("data") or {} for e in events if e.get("kind") == "joined")]
    out: list[str] = []
    for doc in docs:
        if doc.get("status") == "resolved":
            continue
        nodes = doc.get("nodes") or []
        for n in nodes if isinstance(nodes, list | tuple) else []:
            if isinstance(n, str) and n and n not in out:
                out.append(n)
    return out


def episode_start(trigger: Mapping[str, Any] | None, default: str) -> str:
    """When the trigger's failure began (an alert's startsAt), else `default` (ISO 8601, UTC). A re-assessment
    of a long-open incident measures the new outage from here, not from when the incident opened hours ago."""
    raw = (trigger or {}).get("starts_at")
    if isinstance(raw, str):
        try:
            started = datetime.fromisoformat(raw)
        except ValueError:
            return default
        if started.tzinfo is not None:
            return min(started.isoformat(), default, key=datetime.fromisoformat)
    return default
