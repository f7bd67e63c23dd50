"""What Cassandra says became of a repair segment (pure): rows of a coordinator's `system_views.repairs`.

A killed nodetool does not stop a repair inside Cassandra, so before running a segment again the engine
matches the coordinator's repairs against the segment (keyspace, the exact requested range, started after the
attempt began) and decides: done already, still in flight (wait or cancel), or failed (run again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cassandra_recovery.logic.segments import Segment

# Clocks of the flow host and the nodes differ a little; a repair that began this much before the attempt
# was recorded is still taken as the attempt's own.
CLOCK_SLACK = timedelta(seconds=5)


class SessionVerdict(StrEnum):
    SUCCEEDED = "succeeded"
    IN_FLIGHT = "in_flight"
    FAILED = "failed"
    NONE = "none"  # Cassandra never started it (the crash came before nodetool reached the node)


@dataclass(frozen=True)
class SessionMatch:
    verdict: SessionVerdict
    repair_id: str | None
    detail: str


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def matching(rows: Iterable[Mapping[str, Any]], seg: Segment, since: datetime | None) -> list[Mapping[str, Any]]:
    """Repairs of the segment's keyspace whose requested ranges are exactly the segment, begun after `since`."""
    out = []
    for r in rows:
        if r.get("keyspace_name") != seg.keyspace or set(r.get("options_ranges") or ()) != {seg.range_text}:
            continue
        began = _aware(r.get("state_init_timestamp") or r.get("last_updated_at"))
        if since is not None and began is not None and began < _aware(since) - CLOCK_SLACK:  # type: ignore[operator]
            continue
        if (r.get("options_preview_kind") or "NONE") != "NONE":
            continue  # a preview (verification) repairs nothing
        out.append(r)
    return out


def session_verdict(rows: Iterable[Mapping[str, Any]], seg: Segment, since: datetime | None) -> SessionMatch:
    """Succeeded wins over in flight, in flight over failed: one success is all the segment needs."""
    found = matching(rows, seg, since)
    # "skip": Cassandra found nothing to repair (a keyspace without tables, no replica to sync with): the
    # segment is as consistent as a repair could make it.
    ok = [r for r in found if r.get("completed") and str(r.get("status", "")).lower() in ("success", "skip")]
    if ok:
        r = ok[-1]
        done = "skipped: nothing to repair" if str(r.get("status", "")).lower() == "skip" else "succeeded"
        return SessionMatch(SessionVerdict.SUCCEEDED, str(r["id"]), f"repair {r['id']} {done}")
    running = [r for r in found if not r.get("completed")]
    if running:
        r = running[-1]
        return SessionMatch(SessionVerdict.IN_FLIGHT, str(r["id"]), f"repair {r['id']} still {r.get('status')}")
    if found:
        r = found[-1]
        why = r.get("failure_cause") or r.get("status")
        return SessionMatch(SessionVerdict.FAILED, str(r["id"]), f"repair {r['id']} failed: {why}")
    return SessionMatch(SessionVerdict.NONE, None, "no repair of this segment in the coordinator's repairs")


def busy_nodes(rows_by_node: Mapping[str, Iterable[Mapping[str, Any]]]) -> set[str]:
    """Nodes coordinating a repair now, and the participants of those repairs ("/ip:port" -> "ip")."""
    busy: set[str] = set()
    for node, rows in rows_by_node.items():
        for r in rows:
            if r.get("completed"):
                continue
            busy.add(node)
            busy.update(str(p).lstrip("/").rsplit(":", 1)[0] for p in (r.get("participants") or ()))
    return busy
