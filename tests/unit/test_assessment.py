"""Assessment decisions: consistency-level impact, failure classification, hint trust, gc grace and the plan."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cassandra_recovery.logic.assessment import (
    AppImpact,
    AssessmentInput,
    ConsistencyLevel,
    NodeFailureKind,
    NodeObservation,
    PlanAction,
    RepairScope,
    Requirement,
    classify,
    client_error_kind,
    decide_plan,
    gc_grace_breached,
    hint_decision,
    ranges_at_risk,
    required,
)
from cassandra_recovery.logic.replication import (
    NetworkTopologyStrategy,
    Replication,
    RingToken,
    SimpleStrategy,
    TokenRange,
    ranges_replicated_by,
    replication_from,
    token_ranges,
)
from cassandra_recovery.logic.schema_agreement import schema_agreement
from cassandra_recovery.logic.tokens import balanced_tokens
from cassandra_recovery.parsers.describecluster import parse_describecluster
from cassandra_recovery.parsers.hints import parse_getmaxhintwindow
from cassandra_recovery.parsers.status import parse_status
from tests import faults as F
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("assessment")

CL = ConsistencyLevel
N2, N3, N4 = "127.0.0.2", "127.0.0.3", "127.0.0.4"
NODES = (N2, N3, N4)
DC_OF = dict.fromkeys(NODES, "dc1")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
REFUSED = "('Unable to connect to any servers', {'127.0.0.4:9042': ConnectionRefusedError(111, 'Connection refused')})"
TIMEOUT = "OperationTimedOut('errors=Timed out creating connection (5 seconds), last_host=None')"


def lab_ring(tokens_per_node: int) -> list[RingToken]:
    tokens = balanced_tokens(3, tokens_per_node)
    racks = ("rack1", "rack2", "rack3")
    return [RingToken(t, n, "dc1", r) for n, r, ts in zip(NODES, racks, tokens, strict=True) for t in ts]


def counts(risk: dict[ConsistencyLevel, list[TokenRange]]) -> dict[str, int]:
    return {str(cl): len(rs) for cl, rs in risk.items()}


# --- consistency levels ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cl", "rf", "expected"),
    [
        (CL.ONE, {"dc1": 3}, Requirement(total=1)),
        (CL.TWO, {"dc1": 3}, Requirement(total=2)),
        (CL.THREE, {"dc1": 3}, Requirement(total=3)),
        (CL.QUORUM, {"dc1": 3}, Requirement(total=2)),
        (CL.QUORUM, {"dc1": 2}, Requirement(total=2)),
        (CL.QUORUM, {"dc1": 3, "dc2": 3}, Requirement(total=4)),  # over the sum of all DCs
        (CL.ALL, {"dc1": 3, "dc2": 2}, Requirement(total=5)),
        (CL.LOCAL_ONE, {"dc1": 3, "dc2": 3}, Requirement(per_dc={"dc1": 1})),
        (CL.LOCAL_QUORUM, {"dc1": 3, "dc2": 5}, Requirement(per_dc={"dc1": 2})),
        (CL.LOCAL_QUORUM, {"dc2": 3}, Requirement(per_dc={"dc1": 1})),  # no replica in the local DC: never met
        (CL.EACH_QUORUM, {"dc1": 3, "dc2": 5}, Requirement(per_dc={"dc1": 2, "dc2": 3})),
    ],
)
def test_required(cl: ConsistencyLevel, rf: dict[str, int], expected: Requirement) -> None:
    assert required(cl, rf, "dc1") == expected


def test_requirement_met() -> None:
    assert Requirement(total=2).met({"dc1": 1, "dc2": 1})
    assert not Requirement(total=2).met({"dc1": 1})
    assert not Requirement(per_dc={"dc1": 1}).met({"dc2": 3})
    assert Requirement(per_dc={"dc1": 2, "dc2": 1}).met({"dc1": 2, "dc2": 1})


def test_cl_impact_nts_rf2_two_nodes_down() -> None:
    ranges = token_ranges(lab_ring(4), NetworkTopologyStrategy({"dc1": 2}))
    risk = ranges_at_risk(ranges, {N2}, {"dc1": 2}, DC_OF, "dc1")
    # the 4 ranges replicated only by the two down nodes lose even ONE; every range has a down replica
    assert counts(risk) == {
        "ONE": 4,
        "TWO": 12,
        "THREE": 12,  # RF 2 can never give three replicas
        "QUORUM": 12,
        "LOCAL_ONE": 4,
        "LOCAL_QUORUM": 12,
        "EACH_QUORUM": 12,
        "ALL": 12,
    }
    assert all(r.replicas == (N3, N4) for r in risk[CL.ONE])
    assert risk[CL.ONE] == [r for r in ranges if N2 not in r.replicas]


def test_cl_impact_rf3_one_node_down() -> None:
    ranges = token_ranges(lab_ring(4), NetworkTopologyStrategy({"dc1": 3}))
    risk = ranges_at_risk(ranges, {N2, N3}, {"dc1": 3}, DC_OF, "dc1")
    assert counts(risk) == dict.fromkeys(["ONE", "TWO", "QUORUM", "LOCAL_ONE", "LOCAL_QUORUM", "EACH_QUORUM"], 0) | {
        "THREE": 12,
        "ALL": 12,
    }


def test_cl_impact_local_against_each_quorum() -> None:
    ring = [RingToken(i * 10, a, dc, "r1") for i, (a, dc) in enumerate([(f"x{i}", "dc1") for i in range(3)])]
    ring += [RingToken(i * 10 + 5, a, "dc2", "r1") for i, a in enumerate(["y0", "y1", "y2"])]
    dc_of = {t.address: t.datacenter for t in ring}
    ranges = token_ranges(ring, NetworkTopologyStrategy({"dc1": 3, "dc2": 3}))
    risk = ranges_at_risk(ranges, {"x0", "x1", "x2", "y0"}, {"dc1": 3, "dc2": 3}, dc_of, "dc1")
    assert counts(risk) == {
        "ONE": 0,
        "TWO": 0,
        "THREE": 0,
        "QUORUM": 0,  # 4 of 6 live
        "LOCAL_ONE": 0,
        "LOCAL_QUORUM": 0,
        "EACH_QUORUM": 6,  # dc2 has 1 of 3
        "ALL": 6,
    }
    assert counts(ranges_at_risk(ranges, {"y0", "y1", "y2"}, {"dc1": 3, "dc2": 3}, dc_of, "dc1"))["LOCAL_ONE"] == 6


def test_ranges_at_risk_needs_every_replica_dc() -> None:
    ranges = token_ranges(lab_ring(1), SimpleStrategy(2))
    with pytest.raises(ValueError, match="no datacenter"):
        ranges_at_risk(ranges, set(NODES), {"dc1": 2}, {N2: "dc1"}, "dc1")


# --- classification -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reachable", "error", "down", "total", "jmx", "kind", "reason"),
    [
        # process gone: port closed, every peer convicted it, JMX refused too
        (False, REFUSED, 2, 2, False, NodeFailureKind.NODE_FAILURE, "process (or host) is gone"),
        (False, "No route to host", 2, 2, False, NodeFailureKind.NODE_FAILURE, "(other: No route to host)"),
        (False, None, 2, 2, False, NodeFailureKind.NODE_FAILURE, "(none: None)"),
        # frozen process (SIGSTOP): connections time out, peers see it down, JMX silent
        (False, TIMEOUT, 2, 2, False, NodeFailureKind.HUNG, "frozen process"),
        # alive, cut off from peers
        (True, None, 1, 2, True, NodeFailureKind.PARTITION, "alive (the client reaches it) but cut off"),
        (True, None, 2, 2, None, NodeFailureKind.PARTITION, "2 of 2 peers see it down"),
        (False, TIMEOUT, 2, 2, True, NodeFailureKind.PARTITION, "alive (JMX answers)"),
        (False, TIMEOUT, 0, 2, True, NodeFailureKind.PARTITION, "the client cannot reach it (timeout"),
        # alive, native transport off: refused but JMX answers
        (False, REFUSED, 0, 2, True, NodeFailureKind.PARTITION, "native transport off"),
        # not enough evidence
        (True, None, 0, 2, True, NodeFailureKind.UNKNOWN, "no failure evidence"),
        (True, None, 0, 2, False, NodeFailureKind.UNKNOWN, "JMX does not answer"),
        (False, REFUSED, 2, 2, None, NodeFailureKind.UNKNOWN, "JMX not probed"),
        (False, REFUSED, 1, 2, False, NodeFailureKind.UNKNOWN, "only 1 of 2 peers"),
        (False, TIMEOUT, 0, 2, False, NodeFailureKind.UNKNOWN, "observe again"),
        (False, REFUSED, 0, 0, False, NodeFailureKind.UNKNOWN, "only 0 of 0 peers"),
    ],
)
@pytest.mark.fault(F.NODE_FROZEN, F.NODE_PARTITIONED, F.NODE_KILLED)
def test_classify(
    reachable: bool, error: str | None, down: int, total: int, jmx: bool | None, kind: NodeFailureKind, reason: str
) -> None:
    c = classify(N4, reachable, error, down, total, jmx)
    assert (c.node, c.kind) == (N4, kind)
    assert reason in c.reason


def test_classify_rejects_impossible_peer_counts() -> None:
    with pytest.raises(ValueError, match="within 0..peers_total"):
        classify(N4, False, None, 3, 2, False)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (REFUSED, "refused"),
        ("[Errno 111] Connection refused", "refused"),
        (TIMEOUT, "timeout"),
        ("connect timeout", "timeout"),
        ("[Errno 110] Connection timed out", "timeout"),
        ("No route to host", "other"),
        ("", "none"),
        (None, "none"),
    ],
)
def test_client_error_kind(error: str | None, kind: str) -> None:
    assert client_error_kind(error) == kind


# --- hints and gc grace ---------------------------------------------------------------------------------------------

WINDOW = 3 * 3600.0  # Cassandra's default max_hint_window: 3 h


@pytest.mark.parametrize(
    ("outage", "not_stored", "restarted", "oversize", "trust", "reasons"),
    [
        (HOUR, False, False, False, True, ["hints complete: outage 3600 s vs max_hint_window 10800 s"]),
        (3 * HOUR, False, False, False, False, ["outage 10800 s vs max_hint_window 10800 s"]),  # not shorter
        (3 * HOUR - timedelta(seconds=1), False, False, False, True, []),
        (HOUR, True, False, False, False, ["hints not stored (dropped) for the node: yes"]),
        (HOUR, False, True, False, False, ["a coordinator restarted since the outage: yes"]),
        (HOUR, False, False, True, False, ["hints over max_hints_size_per_host: yes"]),
        (HOUR, None, False, False, False, ["hints not stored (dropped) for the node: not observed"]),
        (HOUR, False, None, None, False, ["restarted since the outage: not observed", "size_per_host: not observed"]),
        (4 * HOUR, True, True, True, False, ["max_hint_window", "dropped", "restarted", "size_per_host"]),
    ],
)
@pytest.mark.fault(F.OUTAGE_PAST_HINT_WINDOW, F.COORDINATOR_RESTARTED)
def test_hint_decision(
    outage: timedelta,
    not_stored: bool | None,
    restarted: bool | None,
    oversize: bool | None,
    trust: bool,
    reasons: list[str],
) -> None:
    d = hint_decision(NOW, NOW - outage, WINDOW, not_stored, restarted, oversize)
    assert d.trust_hints is trust
    prefix = "hints complete: " if trust else "hints incomplete: "
    assert all(r.startswith(prefix) for r in d.reasons)
    assert len(d.reasons) == (4 if trust else len(reasons))
    for text, got in zip(reasons, d.reasons, strict=False):
        assert text in got


@pytest.mark.parametrize(
    ("down_for", "breached"),
    [
        (timedelta(0), False),
        (timedelta(days=10) - timedelta(seconds=1), False),
        (timedelta(days=10), True),  # exactly gc_grace counts as breached
        (timedelta(days=10, seconds=1), True),
    ],
)
@pytest.mark.fault(F.OUTAGE_PAST_GC_GRACE)
def test_gc_grace_boundary(down_for: timedelta, breached: bool) -> None:
    assert gc_grace_breached(NOW, NOW - down_for, 864000) is breached


# --- the plan -------------------------------------------------------------------------------------------------------

HEALTHY = NodeObservation(N2, True, None, 0, 2, True)
HUNG = NodeObservation(N4, False, TIMEOUT, 2, 2, False, NOW - HOUR, False, False)
GONE = NodeObservation(N3, False, REFUSED, 2, 2, False, NOW - HOUR, False, False)
KEYSPACES: dict[str, Replication] = {"shop": NetworkTopologyStrategy({"dc1": 2}), "audit": SimpleStrategy(3)}
SCHEMA = {"acd2f037-7f4d-3202-a826-c85776663b6d": [N2, N3], "UNREACHABLE": [N4]}


def base(*nodes: NodeObservation, **changes: Any) -> AssessmentInput:
    inp = AssessmentInput(
        now=NOW,
        ring=lab_ring(4),
        keyspaces=KEYSPACES,
        local_dc="dc1",
        nodes=(HEALTHY, *nodes),
        schema_versions=SCHEMA,
        max_hint_window_s=WINDOW,
        min_gc_grace_s=864000,
        coordinator_restarted=False,
    )
    return replace(inp, **changes)


def has(reasons: list[str], text: str) -> bool:
    return any(text in r for r in reasons)


def test_nothing_down_is_no_action() -> None:
    plan = decide_plan(base(replace(HEALTHY, address=N3)))
    assert (plan.action, plan.targets, plan.scope, plan.held_action) == (PlanAction.NO_ACTION, [], [], None)
    assert plan.reasons == ["no node is down"]
    assert plan.classifications == []
    # counts are of ranges that cannot meet a level, even with every node up (THREE on RF 2): no reason for those
    assert {ks: {cl: n for cl, n in i.unavailable.items() if n} for ks, i in plan.cl_impact.items()} == {
        "audit": {},
        "shop": {CL.THREE: 12},
    }


RETURNED = NodeObservation(N4, True, None, 0, 2, True, NOW - HOUR, False, False, returned=True)


@pytest.mark.fault(F.NODE_BACK_BEFORE_ASSESSMENT)
def test_node_back_before_assessment_still_waits_for_hints() -> None:
    """Reported down by the incident but up again: its missed writes still need hint replay and verification."""
    plan = decide_plan(base(replace(HEALTHY, address=N3), RETURNED))
    assert (plan.action, plan.targets, plan.scope) == (PlanAction.WAIT_FOR_HINTS, [N4], [])
    assert plan.classifications == []
    assert has(plan.reasons, f"{N4}: reported down by this incident and back before assessment")
    assert has(plan.reasons, f"{N4}: hints complete: outage 3600 s")
    assert not has(plan.reasons, "no node is down")
    # it is live again: no consistency level beyond what the topology never offers is lost
    assert {ks: {cl: n for cl, n in i.unavailable.items() if n} for ks, i in plan.cl_impact.items()} == {
        "audit": {},
        "shop": {CL.THREE: 12},
    }


@pytest.mark.fault(F.NODE_BACK_BEFORE_ASSESSMENT, F.OUTAGE_PAST_HINT_WINDOW)
def test_node_back_after_the_hint_window_is_repaired() -> None:
    plan = decide_plan(base(replace(HEALTHY, address=N3), RETURNED, max_hint_window_s=600))
    assert (plan.action, plan.targets) == (PlanAction.REPAIR, [N4])
    assert [s.keyspace for s in plan.scope] == ["audit", "shop"] and all(s.ranges for s in plan.scope)


def test_returned_flag_on_a_node_still_down_changes_nothing() -> None:
    assert decide_plan(base(replace(HUNG, returned=True))) == decide_plan(base(HUNG))


def test_short_clean_outage_waits_for_hints() -> None:
    plan = decide_plan(base(HUNG))
    assert (plan.action, plan.targets, plan.scope) == (PlanAction.WAIT_FOR_HINTS, [N4], [])
    assert [(c.node, c.kind) for c in plan.classifications] == [(N4, NodeFailureKind.HUNG)]
    assert has(plan.reasons, f"{N4} hung: ")
    assert has(plan.reasons, f"{N4}: hints complete: outage 3600 s")
    # RF 2 with one of three nodes down: the 8 ranges it replicates lose QUORUM, none loses ONE
    assert plan.cl_impact["shop"].ranges == 12
    assert plan.cl_impact["shop"].unavailable[CL.ONE] == 0
    assert plan.cl_impact["shop"].unavailable[CL.QUORUM] == 8
    assert plan.cl_impact["audit"].unavailable[CL.QUORUM] == 0
    assert plan.cl_impact["audit"].unavailable[CL.ALL] == 12
    assert has(
        plan.reasons,
        "keyspace shop: ranges unavailable at TWO 8/12, QUORUM 8/12, LOCAL_QUORUM 8/12, EACH_QUORUM 8/12, ALL 8/12",
    )


@pytest.mark.parametrize(
    ("node", "changes", "reason"),
    [
        (replace(HUNG, down_since=NOW - 4 * HOUR), {}, "hints incomplete: outage 14400 s vs max_hint_window 10800 s"),
        (replace(HUNG, not_stored_grew=True), {}, "hints incomplete: hints not stored (dropped) for the node: yes"),
        (replace(HUNG, hints_over_size_limit=True), {}, "hints incomplete: hints over max_hints_size_per_host: yes"),
        (
            replace(HUNG, not_stored_grew=None),
            {},
            "hints incomplete: hints not stored (dropped) for the node: not observed",
        ),
        (HUNG, {"coordinator_restarted": True}, "hints incomplete: a coordinator restarted since the outage: yes"),
        (
            HUNG,
            {"coordinator_restarted": None},
            "hints incomplete: a coordinator restarted since the outage: not observed",
        ),
        (replace(HUNG, down_since=None), {}, "outage start unknown"),
    ],
)
@pytest.mark.fault(F.OUTAGE_PAST_HINT_WINDOW)
def test_untrusted_hints_repair_the_ranges_of_the_node(
    node: NodeObservation, changes: dict[str, Any], reason: str
) -> None:
    plan = decide_plan(base(node, **changes))
    assert (plan.action, plan.targets, plan.held_action) == (PlanAction.REPAIR, [N4], None)
    assert has(plan.reasons, f"{N4}: {reason}")
    assert has(plan.reasons, f"run it once {N4} answer again")
    shop = token_ranges(lab_ring(4), KEYSPACES["shop"])
    assert plan.scope == [
        RepairScope("audit", token_ranges(lab_ring(4), KEYSPACES["audit"])),  # RF 3: every range
        RepairScope("shop", ranges_replicated_by(shop, [N4])),
    ]
    assert len(plan.scope[1].ranges) == 8


@pytest.mark.fault(F.OUTAGE_PAST_GC_GRACE)
def test_gc_grace_breached_wipes_and_replaces() -> None:
    old = replace(HUNG, down_since=NOW - timedelta(days=10))
    plan = decide_plan(base(old))
    assert (plan.action, plan.targets, plan.scope) == (PlanAction.WIPE_AND_REPLACE, [N4], [])
    assert has(plan.reasons, f"{N4}: down 864000 s >= gc_grace 864000 s: tombstones it missed may be purged")
    assert not has(plan.reasons, "hints")  # the hint window does not matter any more


def test_replace_one_node_and_repair_the_other() -> None:
    plan = decide_plan(base(replace(HUNG, down_since=NOW - timedelta(days=11)), replace(GONE, not_stored_grew=True)))
    assert (plan.action, plan.targets) == (PlanAction.WIPE_AND_REPLACE, [N4])
    assert [(s.keyspace, len(s.ranges)) for s in plan.scope] == [("audit", 12), ("shop", 8)]
    assert all(N3 in r.replicas for s in plan.scope for r in s.ranges)
    assert has(plan.reasons, f"{N3} node_failure: ")
    # two of three down: the ranges held only by them lose ONE
    assert plan.cl_impact["shop"].unavailable[CL.ONE] == 4


@pytest.mark.fault(F.SCHEMA_DISAGREEMENT)
def test_schema_disagreement_escalates() -> None:
    split = {"acd2f037-7f4d-3202-a826-c85776663b6d": [N3], "2d1bdcb8-79fb-3e66-b46d-807a06d28446": [N2, N4]}
    plan = decide_plan(base(HUNG, schema_versions=split))
    assert (plan.action, plan.held_action, plan.targets) == (PlanAction.ESCALATE, PlanAction.WAIT_FOR_HINTS, [N4])
    assert plan.reasons[0].startswith("schema disagreement among live nodes")


def test_unreachable_node_is_not_a_schema_disagreement() -> None:
    assert decide_plan(base(HUNG)).action is PlanAction.WAIT_FOR_HINTS  # SCHEMA lists N4 as UNREACHABLE


STALE, CURRENT = "5e1a6a4c-1f6e-3c4b-9d7e-2a1b3c4d5e6f", "9b2f0c11-7e1d-3f0a-8c55-0d4e6f7a8b9c"


@pytest.mark.fault(F.NODE_FROZEN, F.SCHEMA_DISAGREEMENT)
def test_a_hung_nodes_stale_schema_is_not_a_disagreement_among_live_nodes() -> None:
    """From the issue: node3 (127.0.0.4) frozen while a keyspace was created; describecluster lists it under its
    old version. The plan was escalate; it is a plain hung-node outage with complete hints."""
    plan = decide_plan(base(HUNG, schema_versions={STALE: [N4], CURRENT: [N2, N3]}))
    assert (plan.action, plan.held_action, plan.targets) == (PlanAction.WAIT_FOR_HINTS, None, [N4])
    assert not has(plan.reasons, "schema disagreement")
    assert has(plan.reasons, f"{N4} is down: its schema version {STALE} differs from the live nodes'")


@pytest.mark.fault(F.NODE_BACK_BEFORE_ASSESSMENT, F.SCHEMA_DISAGREEMENT)
@pytest.mark.parametrize(
    ("back_for", "action"),
    [
        (timedelta(seconds=10), PlanAction.WAIT_FOR_HINTS),  # still pulling the schema
        (timedelta(seconds=59), PlanAction.WAIT_FOR_HINTS),
        (timedelta(seconds=60), PlanAction.ESCALATE),  # back for the settle time: a real disagreement
        (None, PlanAction.ESCALATE),  # nothing shows it just returned: counted
    ],
)
def test_a_just_returned_node_may_differ_for_the_settle_time(back_for: timedelta | None, action: PlanAction) -> None:
    back = replace(RETURNED, back_since=None if back_for is None else NOW - back_for)
    inp = base(replace(HEALTHY, address=N3), back, schema_versions={STALE: [N4], CURRENT: [N2, N3]})
    plan = decide_plan(replace(inp, schema_settle_s=60))
    assert (plan.action, plan.targets) == (action, [N4])
    if action is PlanAction.ESCALATE:
        assert plan.held_action is PlanAction.WAIT_FOR_HINTS
        assert plan.reasons[0] == (
            f"schema disagreement among live nodes: {{'{STALE}': ['{N4}'], '{CURRENT}': ['{N2}', '{N3}']}}; "
            "repairing or streaming could worsen it"
        )
    else:
        assert has(plan.reasons, f"{N4} came back less than 60 s ago: its schema version {STALE} differs")


def test_schema_agreement_names_only_versions_that_differ() -> None:
    agreeing = schema_agreement({CURRENT: [N2, N3, N4]}, {N4}, {}, NOW, 60)
    assert (agreeing.disagreeing, agreeing.set_aside) == ({}, [])  # a down node that agrees is not mentioned
    unreachable = schema_agreement({CURRENT: [N2, N3], "UNREACHABLE": [N4]}, {N4}, {}, NOW, 60)
    assert (unreachable.disagreeing, unreachable.set_aside) == ({}, [])
    live = schema_agreement({STALE: [N2], CURRENT: [N3, N4]}, {N4}, {N2: NOW - timedelta(hours=1)}, NOW, 60)
    assert live.disagreeing == {STALE: [N2], CURRENT: [N3]}


def test_unclassifiable_failure_escalates() -> None:
    plan = decide_plan(base(replace(HUNG, jmx_answers=None)))
    assert (plan.action, plan.held_action) == (PlanAction.ESCALATE, PlanAction.WAIT_FOR_HINTS)
    assert plan.reasons[0] == f"cannot classify the failure of {N4}: not acting on unexplained evidence"


@pytest.mark.parametrize(("age", "action"), [(None, PlanAction.REPAIR), (300.0, PlanAction.REPAIR), (301.0, None)])
def test_old_application_queue_escalates(age: float | None, action: PlanAction | None) -> None:
    app = AppImpact(breaker_state="open", fallback_share=0.4, queue_age_s=age)
    plan = decide_plan(base(replace(HUNG, not_stored_grew=True), app=app))
    assert plan.app == app  # copied in as context
    if action is None:
        assert (plan.action, plan.held_action) == (PlanAction.ESCALATE, PlanAction.REPAIR)
        assert plan.reasons[0] == "application write queue is 301 s old, over the 300 s limit"
        assert plan.scope  # the repair it would run stays in the plan
    else:
        assert (plan.action, plan.held_action) == (action, None)


def test_known_condition_is_reported_not_acted_on() -> None:
    split = {"a" * 36: [N2], "b" * 36: [N3]}
    app = AppImpact(queue_age_s=900.0)
    plan = decide_plan(base(HUNG, known_condition="maintenance window m-42", schema_versions=split, app=app))
    assert (plan.action, plan.held_action, plan.targets) == (PlanAction.NO_ACTION, PlanAction.WAIT_FOR_HINTS, [N4])
    assert plan.reasons[0] == "reported, not acted on: maintenance window m-42"
    assert has(plan.reasons, "schema disagreement") and has(plan.reasons, "queue is 900 s old")
    assert plan.cl_impact["shop"].unavailable[CL.QUORUM] == 8  # the impact is still reported


def test_known_condition_with_nothing_down_holds_nothing() -> None:
    plan = decide_plan(base(known_condition="silence s-7"))
    assert (plan.action, plan.held_action) == (PlanAction.NO_ACTION, None)


@pytest.mark.fault(F.NODE_PARTITIONED)
def test_partitioned_node_is_judged_by_its_hints() -> None:
    partitioned = NodeObservation(N3, True, None, 1, 2, True, NOW - HOUR, False, False)
    plan = decide_plan(base(partitioned))
    assert (plan.action, plan.targets) == (PlanAction.WAIT_FOR_HINTS, [N3])
    assert plan.classifications[0].kind is NodeFailureKind.PARTITION


def test_plan_as_dict_is_json() -> None:
    plan = decide_plan(base(replace(HUNG, not_stored_grew=True), app=AppImpact("half_open", 0.1, 12.0)))
    d = plan.as_dict()
    assert d["action"] == "repair"
    assert d["scope"][1]["keyspace"] == "shop"
    assert set(d["scope"][1]["ranges"][0]) == {"start", "end", "replicas"}
    assert d["cl_impact"]["shop"]["unavailable"]["QUORUM"] == 8
    assert d["classifications"][0]["kind"] == "hung"
    assert d["app"] == {"breaker_state": "half_open", "fallback_share": 0.1, "queue_age_s": 12.0}
    assert json.loads(json.dumps(d)) == json.loads(json.dumps(d, sort_keys=True))


def test_plan_from_the_node3_down_fixtures() -> None:
    """node3 frozen (SIGSTOP) in the lab: status, describecluster and getmaxhintwindow as captured from node1."""
    status = parse_status(load_fixture("status_node3_down").stdout)
    cluster = parse_describecluster(load_fixture("describecluster_node3_down").stdout)
    window_ms = parse_getmaxhintwindow(load_fixture("getmaxhintwindow_default").stdout)
    where = {r.address: (r.datacenter, r.rack) for r in status}
    ring = [RingToken(ts[0], a, *where[a]) for a, ts in zip(NODES, balanced_tokens(3), strict=True)]
    keyspaces = {
        ks: rep for ks, k in cluster.keyspaces.items() if (rep := replication_from(k.strategy, k.options)) is not None
    }
    down = [r.address for r in status if not r.up]
    nodes = [
        NodeObservation(a, False, TIMEOUT, 2, 2, False, NOW - 20 * timedelta(minutes=1), False, False) for a in down
    ]
    plan = decide_plan(
        AssessmentInput(
            now=NOW,
            ring=ring,
            keyspaces=keyspaces,
            local_dc="dc1",
            nodes=nodes,
            schema_versions=cluster.schema_versions,
            max_hint_window_s=window_ms / 1000,
            min_gc_grace_s=864000,
            coordinator_restarted=False,
        )
    )
    assert (plan.action, plan.targets) == (PlanAction.WAIT_FOR_HINTS, [N4])
    assert sorted(plan.cl_impact) == ["fixtures", "system_auth", "system_distributed", "system_traces"]
    assert plan.cl_impact["fixtures"].unavailable[CL.QUORUM] == 0
    assert plan.cl_impact["fixtures"].unavailable[CL.ALL] == 3
    assert plan.cl_impact["system_auth"].unavailable[CL.ONE] == 1  # RF 1: node3's own range is gone


@pytest.mark.fault(F.NODE_KILLED)
def test_a_crashed_node_is_repaired_since_hints_do_not_cover_what_it_lost() -> None:
    """Periodic commit-log sync: a killed process loses writes it acknowledged since the last sync."""
    crashed = decide_plan(base(GONE, commitlog_periodic=True))
    assert (crashed.action, crashed.targets) == (PlanAction.REPAIR, [N3])
    assert has(crashed.reasons, f"{N3}: its process died or restarted")
    unknown_sync = decide_plan(base(GONE))  # not read: assumed periodic, the default
    assert unknown_sync.action is PlanAction.REPAIR
    batch = decide_plan(base(GONE, commitlog_periodic=False))  # batch/group sync: nothing acknowledged is lost
    assert batch.action is PlanAction.WAIT_FOR_HINTS
    restarted = decide_plan(base(replace(HEALTHY, address=N3), replace(RETURNED, restarted=True)))
    assert (restarted.action, restarted.targets) == (PlanAction.REPAIR, [N4])
    hung = decide_plan(base(HUNG, commitlog_periodic=True))  # frozen, not restarted: its memtables are intact
    assert hung.action is PlanAction.WAIT_FOR_HINTS


def test_jmx_checked_beside_the_other_reads_decides_hung_versus_gone() -> None:
    """with_jmx sets each node's JMX answer, by address, after the other reads were taken: the plan is the one the
    answer gives (a timed-out JMX: hung, hints; an answering JMX: partition), never the one of no answer."""
    from cassandra_recovery.logic.assessment import with_jmx

    unknown = replace(HUNG, jmx_answers=None)
    inp = with_jmx(base(unknown), {N4: False, "127.0.0.9": True})
    assert [n.jmx_answers for n in inp.nodes] == [True, False]  # HEALTHY untouched, N4 set, stray address ignored
    assert with_jmx(base(unknown), {}).nodes == base(unknown).nodes
    kinds = {c.node: c.kind for c in decide_plan(inp).classifications}
    assert kinds == {N4: NodeFailureKind.HUNG}
    answering = {c.node: c.kind for c in decide_plan(with_jmx(base(unknown), {N4: True})).classifications}
    assert answering == {N4: NodeFailureKind.PARTITION}
