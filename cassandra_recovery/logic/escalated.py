"""What an incident handed to a person still owes (pure): a page for every new outage that joins it, and routine
repair before deleted data can resurrect. An escalated incident stays open until a person closes it; without this,
a new outage joining it and repair age passing gc_grace_seconds would both go unnoticed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from cassandra_recovery.logic.repair_age import RepairAge

HELD, RELEASED = "repairs_held", "repairs_released"  # a person's explicit hold on routine repair, on the timeline


def join_page_key(trigger: Mapping[str, Any]) -> str:
    """One page per outage: a re-sent alert or a detector offering its trigger again gives the same key, a new
    episode (another startsAt, another confirmation, other nodes) a new one."""
    parts = [str(trigger.get(k) or "") for k in ("source", "kind", "fingerprint", "starts_at", "confirmed_at")]
    parts += sorted(str(n) for n in trigger.get("nodes") or [])
    return "join:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def age_page_key(now: datetime, every_s: float) -> str:
    """One repair-age page per `every_s` period."""
    return f"repair-age:{int(now.timestamp() // every_s)}"


def already_paged(events: Iterable[Mapping[str, Any]], key: str) -> bool:
    return any(e.get("kind") == "paged" and (e.get("data") or {}).get("key") == key for e in events)


def near_gc_grace(ages: Iterable[RepairAge], margin_s: float) -> list[RepairAge]:
    """Tables whose last successful repair is older than gc_grace_seconds minus the margin. A table never
    repaired by this tool (no age) is not counted: its age is unknown, and the repair-age alert reports it."""
    return [
        a
        for a in ages
        if a.age_seconds is not None and a.gc_grace_seconds > 0 and a.age_seconds >= a.gc_grace_seconds - margin_s
    ]


def repairs_held(events: Iterable[Mapping[str, Any]]) -> str | None:
    """Why a person holds routine repair for this incident (the newest hold not released since), else None."""
    held: str | None = None
    for e in events:
        if e.get("kind") == HELD:
            data = e.get("data") or {}
            held = f"held by {data.get('by', e.get('actor', '?'))}: {data.get('reason', '')}"
        elif e.get("kind") == RELEASED:
            held = None
    return held


def overdue_summary(tables: list[RepairAge], limit: int = 5) -> str:
    shown = ", ".join(
        f"{a.keyspace}.{a.table} ({(a.age_seconds or 0) / 3600:.1f}h of {a.gc_grace_seconds / 3600:.1f}h)"
        for a in tables[:limit]
    )
    more = f" and {len(tables) - limit} more" if len(tables) > limit else ""
    return f"repair age near gc_grace_seconds: {shown}{more}"
