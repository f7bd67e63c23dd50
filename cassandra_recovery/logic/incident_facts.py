"""The runbook's inputs read from an incident's timeline (pure): what `decide()` is asked with.

Nodes are keyed by address (alerts and the detector name nodes, plans and steps use addresses; `addresses` maps
names to addresses and refs it does not know are left out). The timeline is the one
source: a resumed run, the crash resumer or a test replaying a captured incident all derive the same facts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cassandra_recovery.logic.approvals import PLAN, REPLACE, open_request
from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.mitigation_state import mitigation_in_force
from cassandra_recovery.logic.runbook_model import (
    IncidentFacts,
    NodeHistory,
    PendingApproval,
    PlanView,
    RunFacts,
    Step,
    Verdict,
    VerificationFact,
)

_APPROVAL_STEP = {PLAN: Step.MITIGATE, REPLACE: Step.REPLACE_ASK_APPROVAL}


@dataclass
class _Node:
    down_since: datetime
    last_seen_down: datetime
    by_trigger: bool = False
    hints_at: datetime | None = None
    stalled_at: datetime | None = None
    repaired_at: datetime | None = None

    def remedied(self) -> bool:
        return any(t is not None and t > self.last_seen_down for t in (self.hints_at, self.repaired_at))


@dataclass
class TimelineView:
    """The facts, the newest plan and the nodes the newest observation found down (all by address)."""

    facts: IncidentFacts
    plan: PlanView | None
    down_now: frozenset[str]


def read_timeline(
    state: str, events: Iterable[Mapping[str, Any]], addresses: Mapping[str, str], run: RunFacts
) -> TimelineView:
    """Facts for `decide()` from the incident's state and its events in timeline order."""
    evs = list(events)
    known = set(addresses.values())

    def address(ref: object) -> str | None:
        ref = str(ref)
        return addresses.get(ref) or (ref if ref in known else None)

    nodes: dict[str, _Node] = {}
    down_now: set[str] = set()
    plan: PlanView | None = None
    verification: VerificationFact | None = None
    last_trigger = fixed_at = follow_up_at = None
    last_trigger_nodes: tuple[str, ...] = ()
    escalated_at = handed_back_at = reopened_at = all_hints_at = None
    failures, last_failure = run.failures, run.last_failure

    def sighted(refs: Iterable[object], at: datetime, by_trigger: bool = False) -> None:
        for ref in refs:
            a = address(ref)
            if a is None:
                continue
            n = nodes.get(a)
            if n is None or n.remedied():  # first seen, or down again after its remedy: a new outage
                nodes[a] = _Node(at, at, by_trigger or bool(n and n.by_trigger))
            else:
                n.last_seen_down, n.by_trigger = max(at, n.last_seen_down), n.by_trigger or by_trigger

    def remedy(refs: Iterable[object], at: datetime, attr: str) -> None:
        for ref in refs:
            a = address(ref)
            if a is not None and a in nodes:
                setattr(nodes[a], attr, at)

    for e in evs:
        at, kind, data = _time(e["at"]), e.get("kind"), e.get("data") or {}
        if kind in ("opened", "joined") and data.get("status") != "resolved":
            last_trigger = at
            named = _list(data.get("nodes"))
            last_trigger_nodes = tuple(sorted({a for a in map(address, named) if a}))
            sighted(named, at, by_trigger=True)
            down_now |= {a for a in map(address, named) if a}
        elif kind == "transition":
            inner = data.get("data") or {}
            if isinstance(inner.get("down"), list):  # a run's own detection: the newest look at the cluster
                sighted(inner["down"], at)
                down_now = {a for a in map(address, inner["down"]) if a}
            if data.get("from") == IncidentState.MONITORING and data.get("to") == IncidentState.ASSESSING:
                reopened_at = last_trigger or at  # re-opened by the newest trigger
            if data.get("to") == IncidentState.ESCALATED:
                escalated_at = at
            elif data.get("from") == IncidentState.ESCALATED:
                handed_back_at = at
        elif kind == "observed":  # a run's own look before it assessed (a probe adds; a detection is the view)
            named = _list(data.get("down"))
            sighted(named, at)
            seen = {a for a in map(address, named) if a}
            down_now = seen if data.get("by") == "detection" else down_now | seen
        elif kind == "plan_set":
            doc = data.get("plan") or {}
            plan = plan_view(doc, at, address)
            sighted(plan.targets, at)
            down_now = {a for a in map(address, _list(doc.get("down") or plan.targets)) if a}
        elif kind == "healed":
            down_now -= {a for a in map(address, _list(data.get("targets"))) if a}
        elif kind == "hints_drained":
            attr = "hints_at" if data.get("state") == "drained" else "stalled_at"
            remedy(_list(data.get("targets")), at, attr)
            if attr == "hints_at" and known and known <= {address(t) for t in _list(data.get("targets"))}:
                all_hints_at = at
        elif kind == "repaired" and not data.get("escalated"):
            remedy(_list(data["targets"]) if "targets" in data else (plan.targets if plan else ()), at, "repaired_at")
        elif kind == "node_replaced":  # the dead node is gone from the ring: remedied, and no longer down
            remedy([data.get("dead_address")], at, "repaired_at")
            down_now -= {a for a in [address(data.get("dead_address"))] if a}
        elif kind == "verified":
            verification = VerificationFact(at, Verdict(str(data.get("verdict"))))
        elif kind == "fixed":
            fixed_at = at
        elif kind == "follow_up_scheduled":
            follow_up_at = _time(data["at"]) if data.get("at") else None
        elif kind == "run_retried":
            failures = max(failures, int(data.get("failures") or 0))
            last_failure = str(data.get("reason") or last_failure or "")
    facts = IncidentFacts(
        state=IncidentState(state),
        run=replace(run, failures=failures, last_failure=last_failure),
        nodes=tuple(
            NodeHistory(a, n.down_since, n.last_seen_down, n.by_trigger, n.hints_at, n.stalled_at, n.repaired_at)
            for a, n in sorted(nodes.items())
        ),
        last_trigger_at=last_trigger,
        last_trigger_nodes=last_trigger_nodes,
        mitigated=mitigation_in_force(evs) is not None,
        verification=verification,
        fixed_at=fixed_at,
        approval=_pending(evs),
        follow_up_at=follow_up_at,
        paged=escalated_at is not None and (handed_back_at is None or handed_back_at < escalated_at),
        reopened_at=reopened_at,
        all_hints_watched_at=all_hints_at,
    )
    return TimelineView(facts, plan, frozenset(down_now))


def plan_view(doc: Mapping[str, Any], at: datetime, address: Any = str) -> PlanView:
    """The stored plan as the runbook reads it: the replaceable nodes are those whose failure is a dead process."""
    kinds = {address(c.get("node")): c.get("kind") for c in doc.get("classifications") or []}
    targets = tuple(a for a in (address(t) for t in _list(doc.get("targets"))) if a)
    return PlanView(
        action=PlanAction(str(doc.get("action", PlanAction.NO_ACTION))),
        targets=targets,
        made_at=at,
        replaceable=frozenset(a for a, k in kinds.items() if a and k == "node_failure"),
        known_condition=doc.get("known_condition"),
        reasons=tuple(str(r) for r in doc.get("reasons") or ()),
    )


def _pending(evs: list[Mapping[str, Any]]) -> PendingApproval | None:
    for action, step in _APPROVAL_STEP.items():
        req = open_request(evs, action)
        if req is not None and req.get("deadline"):
            return PendingApproval(step, _time(req["deadline"]), tuple(str(n) for n in _list(req.get("nodes"))))
    return None


def _time(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []
