"""Approval requests on an incident's timeline (pure): the newest request is open until a decision follows it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REPLACE = "replace"  # a node replacement (requests recorded before actions were named carry none: replace)
PLAN = "plan"  # a proposed plan, at the `propose` automation level


def open_request(events: Iterable[Mapping[str, Any]], action: str) -> dict[str, Any] | None:
    """The data of the newest `approval_requested` when it asks for `action` and no `approval_decided` came after
    it (events in timeline order, with `seq`), else None. Only the newest request can be open: a run asks one
    question at a time and a decision answers the latest one."""
    evs = list(events)
    asked = [e for e in evs if e.get("kind") == "approval_requested"]
    if not asked or (asked[-1].get("data") or {}).get("action", REPLACE) != action:
        return None
    last = int(asked[-1]["seq"])
    if any(e.get("kind") == "approval_decided" and int(e["seq"]) > last for e in evs):
        return None
    return dict(asked[-1].get("data") or {})


def plan_approved(events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a person approved the newest plan (automation level `propose`): one approval covers every side
    effect of the plan they were shown; a new plan (a re-assessment) needs a new approval."""
    approved, asking = False, None
    for e in events:
        kind, data = e.get("kind"), e.get("data") or {}
        if kind == "plan_set":
            approved = False
        elif kind == "approval_requested":
            asking = data.get("action", REPLACE)
        elif kind == "approval_decided" and asking == PLAN:
            approved, asking = bool(data.get("approved")), None
    return approved
