"""Which nodes an incident's triggers reported down (pure): a node that is back by the time of assessment
still missed writes while it was away, so the pipeline owes it hint replay and verification."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
