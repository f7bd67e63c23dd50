"""Whether an incident's mitigation is in force, from its timeline (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Events that end a mitigation: the normal policy restored after verification, or lifted by the assessment.
ENDS = frozenset({"policy_restored", "mitigation_lifted"})


def mitigation_in_force(events: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest `mitigated` event's data when nothing ended it since, else None (events in timeline order)."""
    current: dict[str, Any] | None = None
    for e in events:
        if e.get("kind") == "mitigated":
            current = dict(e.get("data") or {})
        elif e.get("kind") in ENDS:
            current = None
    return current
