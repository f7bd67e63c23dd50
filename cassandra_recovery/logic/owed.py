"""Which nodes an incident still owes hint replay or repair before it may close (pure), read from its timeline.

A node is seen down when a trigger names it (`opened`, `joined`; a resolved alert reports a recovery), when a
run's detection sees it down (`transition` data `down`) or when a plan targets it (`plan_set`). It is remedied by
hint replay watched to the end (`hints_drained`, state `drained`, naming it), by a repair that is not escalated
(`repaired`, naming its targets or else those of the plan) or by its replacement (`node_replaced`). It is owed
while its last sighting has no remedy after it: nothing seen down is left unverified, checked where an incident
closes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


def owed_nodes(events: Iterable[Mapping[str, Any]], addresses: Mapping[str, str]) -> list[str]:
    """Addresses of the nodes seen down whose last sighting has no remedy after it, in address order.
    `addresses`: node name -> address for the cluster; names or addresses it does not know are left out (the
    assessment cannot match them either)."""
    known = set(addresses.values())

    def address(ref: object) -> str | None:
        ref = str(ref)
        return addresses.get(ref) or (ref if ref in known else None)

    seen: dict[str, datetime] = {}
    remedied: dict[str, datetime] = {}
    plan_targets: list[str] = []

    def mark(table: dict[str, datetime], refs: Iterable[object], at: datetime) -> None:
        for ref in refs:
            a = address(ref)
            if a is not None:
                table[a] = max(at, table.get(a, at))

    for e in events:
        at = _time(e["at"])
        data: Mapping[str, Any] = e.get("data") or {}
        kind = e.get("kind")
        if kind in ("opened", "joined") and data.get("status") != "resolved":
            mark(seen, _list(data.get("nodes")), at)
        elif kind == "transition":
            mark(seen, _list((data.get("data") or {}).get("down")), at)
        elif kind == "plan_set":
            plan_targets = [str(t) for t in _list((data.get("plan") or {}).get("targets"))]
            mark(seen, plan_targets, at)
        elif kind == "hints_drained" and data.get("state") == "drained":
            mark(remedied, _list(data.get("targets")), at)
        elif kind == "repaired" and not data.get("escalated"):
            mark(remedied, _list(data["targets"]) if "targets" in data else plan_targets, at)
        elif kind == "node_replaced":
            mark(remedied, [data.get("dead_address")], at)
    return sorted(a for a, t in seen.items() if a not in remedied or remedied[a] < t)


def _time(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []
