"""The runbook decision by tables: every incident state x situation has a row; invariants as rows and properties."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.runbook import decide
from cassandra_recovery.logic.runbook_model import (
    AutomationLevel,
    Controls,
    Decision,
    Execution,
    IncidentFacts,
    NodeHistory,
    Observation,
    PendingApproval,
    PlanView,
    RunFacts,
    RunStatus,
    Step,
    Verdict,
    VerificationFact,
)

pytestmark = pytest.mark.area("incident")

S = IncidentState
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
N1, N2, N3 = "node1", "node2", "node3"
SELF = RunFacts(RunStatus.SELF)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def seen(node: str = N3, since: float = 300, last: float = 300, **kw: object) -> NodeHistory:
    return NodeHistory(node, ago(since), ago(last), **kw)  # type: ignore[arg-type]


def plan(action: PlanAction, targets: tuple[str, ...] = (N3,), made: float = 200, **kw: object) -> PlanView:
    return PlanView(action, targets, ago(made), **kw)  # type: ignore[arg-type]


def converged(at: float) -> VerificationFact:
    return VerificationFact(ago(at), Verdict.CONVERGED)


@dataclass(frozen=True)
class Case:
    facts: IncidentFacts  # its state is replaced by each column's
    obs: Observation
    controls: Controls = Controls()


def facts(**kw: object) -> IncidentFacts:
    base: dict[str, object] = {"state": S.DETECTED, "run": SELF, "last_trigger_at": ago(400), "paged": True}
    return IncidentFacts(**(base | kw))  # type: ignore[arg-type]


WAIT = plan(PlanAction.WAIT_FOR_HINTS)
DOWN = frozenset({N3})
HINTED = seen(hints_watched_at=ago(100))  # back, hints replayed after it was last seen down
HINTED_F = facts(nodes=(HINTED,), mitigated=True)

# A finite set of situations; each is an incident's facts and a fresh observation, in any state.
SITUATIONS: dict[str, Case] = {
    "node down, unmitigated": Case(facts(nodes=(seen(),)), Observation(NOW, DOWN)),
    "node down, mitigated, no plan": Case(facts(nodes=(seen(),), mitigated=True), Observation(NOW, DOWN)),
    "node down, planned, within heal": Case(facts(nodes=(seen(),), mitigated=True), Observation(NOW, DOWN, WAIT)),
    "dead node past heal": Case(
        facts(nodes=(seen(since=1000),), mitigated=True),
        Observation(NOW, DOWN, replace(WAIT, replaceable=frozenset({N3}))),
    ),
    "hung node past heal": Case(facts(nodes=(seen(since=1000),), mitigated=True), Observation(NOW, DOWN, WAIT)),
    "past gc grace": Case(
        facts(nodes=(seen(),), mitigated=True), Observation(NOW, DOWN, plan(PlanAction.WIPE_AND_REPLACE))
    ),
    "node back, hints owed": Case(facts(nodes=(seen(),), mitigated=True), Observation(NOW, plan=WAIT)),
    # the first observed failure: the run's detection saw it down, the plan made after says "no node is down"
    "node back, not in plan": Case(
        facts(nodes=(seen(N1),), mitigated=True), Observation(NOW, plan=plan(PlanAction.NO_ACTION, ()))
    ),
    "hints untrusted": Case(facts(nodes=(seen(),), mitigated=True), Observation(NOW, plan=plan(PlanAction.REPAIR))),
    "hints stalled": Case(facts(nodes=(seen(hints_stalled_at=ago(50)),), mitigated=True), Observation(NOW, plan=WAIT)),
    "plan escalates": Case(
        facts(nodes=(seen(),), mitigated=True),
        Observation(NOW, DOWN, plan(PlanAction.ESCALATE, reasons=("cannot classify the failure of node3",))),
    ),
    "known condition": Case(
        facts(nodes=(seen(),), mitigated=True),
        Observation(NOW, DOWN, plan(PlanAction.NO_ACTION, known_condition="maintenance window m-1")),
    ),
    "verification owed": Case(HINTED_F, Observation(NOW, plan=WAIT)),
    "diverged": Case(
        replace(HINTED_F, verification=VerificationFact(ago(50), Verdict.DIVERGED)), Observation(NOW, plan=WAIT)
    ),
    "diverged after fix": Case(
        replace(HINTED_F, verification=VerificationFact(ago(20), Verdict.DIVERGED), fixed_at=ago(40)),
        Observation(NOW, plan=WAIT),
    ),
    "fixed, not verified again": Case(
        replace(HINTED_F, verification=VerificationFact(ago(50), Verdict.DIVERGED), fixed_at=ago(40)),
        Observation(NOW, plan=WAIT),
    ),
    "cannot verify": Case(
        replace(HINTED_F, verification=VerificationFact(ago(50), Verdict.CANNOT_VERIFY)), Observation(NOW, plan=WAIT)
    ),
    "verified, mitigated": Case(replace(HINTED_F, verification=converged(50)), Observation(NOW, plan=WAIT)),
    "verified": Case(replace(HINTED_F, verification=converged(50), mitigated=False), Observation(NOW, plan=WAIT)),
    "verified, follow-up ahead": Case(
        replace(HINTED_F, verification=converged(50), mitigated=False, follow_up_at=NOW + timedelta(hours=1)),
        Observation(NOW, plan=WAIT),
    ),
    "verified, follow-up due": Case(
        replace(HINTED_F, verification=converged(50), mitigated=False, follow_up_at=ago(10)),
        Observation(NOW, plan=WAIT),
    ),
    "follow-up verified": Case(
        replace(HINTED_F, verification=converged(5), mitigated=False, follow_up_at=ago(10)),
        Observation(NOW, plan=WAIT),
    ),
    # the second observed failure: two nodes back before the run, reported by a trigger after the verification
    "new trigger after verification": Case(
        facts(
            nodes=(HINTED, seen(N1, 20, 5, reported_by_trigger=True), seen(N2, 20, 5, reported_by_trigger=True)),
            verification=converged(50),
            last_trigger_at=ago(5),
            follow_up_at=NOW + timedelta(hours=1),
        ),
        Observation(NOW, plan=WAIT),
    ),
    "nothing seen down": Case(facts(nodes=()), Observation(NOW, plan=plan(PlanAction.NO_ACTION, (), made=100))),
    "another run holds the lease": Case(facts(nodes=(seen(),), run=RunFacts(RunStatus.OTHER)), Observation(NOW, DOWN)),
    "run failed": Case(
        facts(nodes=(seen(),), run=RunFacts(RunStatus.FAILED, 1, "TimeoutError in _wait_until_free")),
        Observation(NOW, DOWN, WAIT),
    ),
    "run failed too often": Case(
        facts(nodes=(seen(),), run=RunFacts(RunStatus.FAILED, 3, "drain_write_queue: queue never reached 0")),
        Observation(NOW, DOWN, WAIT),
    ),
    "no run, work owed": Case(
        facts(nodes=(seen(),), mitigated=True, run=RunFacts(RunStatus.NONE)), Observation(NOW, DOWN, WAIT)
    ),
    "approval pending": Case(
        facts(
            nodes=(seen(since=1000),),
            mitigated=True,
            run=RunFacts(RunStatus.SUSPENDED),
            approval=PendingApproval(Step.REPLACE_ASK_APPROVAL, NOW + timedelta(minutes=30), (N3,)),
        ),
        Observation(NOW, DOWN, replace(WAIT, replaceable=frozenset({N3}))),
    ),
    "approval expired": Case(
        facts(
            nodes=(seen(since=1000),),
            mitigated=True,
            run=RunFacts(RunStatus.SUSPENDED),
            approval=PendingApproval(Step.REPLACE_ASK_APPROVAL, ago(1), (N3,)),
        ),
        Observation(NOW, DOWN, replace(WAIT, replaceable=frozenset({N3}))),
    ),
    "mitigation approval expired": Case(
        facts(nodes=(seen(),), approval=PendingApproval(Step.MITIGATE, ago(1), (N3,))), Observation(NOW, DOWN)
    ),
    "kill switch": Case(
        facts(nodes=(seen(),)), Observation(NOW, DOWN), Controls(kill_switch="set by alice: schema migration")
    ),
    "step blocked": Case(
        facts(nodes=(seen(),), mitigated=True, blocked="repair escalated: segment 3 failed 3 times"),
        Observation(NOW, plan=plan(PlanAction.REPAIR)),
    ),
    "escalated without a page": Case(facts(nodes=(seen(),), paged=False), Observation(NOW, DOWN)),
    # A monitored incident re-opened by a trigger that named no node (a manual run after an outage): every node's
    # hints and the write queue, then a verification after the re-opening (the second observed failure).
    "re-opened, nothing named": Case(
        facts(nodes=(), reopened_at=ago(30), last_trigger_at=ago(30), verification=converged(100)),
        Observation(NOW, plan=plan(PlanAction.NO_ACTION, (), made=20)),
    ),
    "re-opened, hints everywhere": Case(
        facts(
            nodes=(),
            reopened_at=ago(30),
            last_trigger_at=ago(30),
            verification=converged(100),
            all_hints_watched_at=ago(10),
        ),
        Observation(NOW, plan=plan(PlanAction.NO_ACTION, (), made=20)),
    ),  # fmt: skip
    "re-opened, named node replayed": Case(
        facts(
            nodes=(seen(since=40, last=30, reported_by_trigger=True, hints_watched_at=ago(10)),),
            reopened_at=ago(30),
            last_trigger_at=ago(30),
            verification=converged(100),
        ),
        Observation(NOW, plan=plan(PlanAction.WAIT_FOR_HINTS, made=20)),
    ),  # fmt: skip
}

STATES = (S.DETECTED, S.ASSESSING, S.MITIGATING, S.RECOVERING, S.VERIFYING, S.MONITORING, S.RESOLVED, S.ESCALATED)
# Short names for the table's cells.
ASSESS, MITIGATE, HEAL, HINTS = Step.ASSESS, Step.MITIGATE, Step.WAIT_FOR_HEAL, Step.WATCH_HINTS
REPAIR, REPLACE, VERIFY, FIX = Step.REPAIR, Step.REPLACE_ASK_APPROVAL, Step.VERIFY, Step.FIX_DIVERGENCE
NORMAL, FOLLOW, RESOLVE, ESC = Step.RESTORE_NORMAL, Step.SCHEDULE_FOLLOW_UP, Step.RESOLVE, Step.ESCALATE
RETRY, NOTHING = Step.RETRY, Step.NOTHING

# fmt: off
# Columns: detected, assessing, mitigating, recovering, verifying, monitoring, resolved, escalated (STATES).
TABLE: dict[str, tuple[Step, ...]] = {
    "node down, unmitigated":           (MITIGATE, MITIGATE, MITIGATE, MITIGATE, MITIGATE, MITIGATE, NOTHING, NOTHING),
    "node down, mitigated, no plan":    (ASSESS, ASSESS, ASSESS, ASSESS, ASSESS, ASSESS, NOTHING, NOTHING),
    "node down, planned, within heal":  (ASSESS, HEAL, HEAL, HEAL, HEAL, HEAL, NOTHING, NOTHING),
    "dead node past heal":              (ASSESS, REPLACE, REPLACE, REPLACE, REPLACE, REPLACE, NOTHING, NOTHING),
    "hung node past heal":              (ASSESS, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "past gc grace":                    (ASSESS, REPLACE, REPLACE, REPLACE, REPLACE, REPLACE, NOTHING, NOTHING),
    "node back, hints owed":            (ASSESS, HINTS, HINTS, HINTS, HINTS, HINTS, NOTHING, NOTHING),
    "node back, not in plan":           (ASSESS, HINTS, HINTS, HINTS, HINTS, HINTS, NOTHING, NOTHING),
    "hints untrusted":                  (ASSESS, REPAIR, REPAIR, REPAIR, REPAIR, REPAIR, NOTHING, NOTHING),
    "hints stalled":                    (ASSESS, REPAIR, REPAIR, REPAIR, REPAIR, REPAIR, NOTHING, NOTHING),
    "plan escalates":                   (ASSESS, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "known condition":                  (ASSESS, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "verification owed":                (ASSESS, VERIFY, VERIFY, VERIFY, VERIFY, VERIFY, NOTHING, NOTHING),
    "diverged":                         (ASSESS, FIX, FIX, FIX, FIX, FIX, NOTHING, NOTHING),
    "diverged after fix":               (ASSESS, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "fixed, not verified again":        (ASSESS, VERIFY, VERIFY, VERIFY, VERIFY, VERIFY, NOTHING, NOTHING),
    "cannot verify":                    (ASSESS, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "verified, mitigated":              (ASSESS, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, NOTHING, NOTHING),
    "verified":                         (ASSESS, FOLLOW, FOLLOW, FOLLOW, FOLLOW, FOLLOW, NOTHING, NOTHING),
    "verified, follow-up ahead":        (ASSESS, FOLLOW, FOLLOW, FOLLOW, FOLLOW, NOTHING, NOTHING, NOTHING),
    "verified, follow-up due":          (ASSESS, FOLLOW, FOLLOW, FOLLOW, FOLLOW, VERIFY, NOTHING, NOTHING),
    "follow-up verified":               (ASSESS, FOLLOW, FOLLOW, FOLLOW, FOLLOW, RESOLVE, NOTHING, NOTHING),
    "new trigger after verification":   (MITIGATE, MITIGATE, MITIGATE, MITIGATE, MITIGATE, MITIGATE, NOTHING, NOTHING),
    "nothing seen down":                (ASSESS, RESOLVE, VERIFY, VERIFY, VERIFY, VERIFY, NOTHING, NOTHING),
    "another run holds the lease":      (NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING),
    "run failed":                       (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY, NOTHING, NOTHING),
    "run failed too often":             (ESC, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "no run, work owed":                (RETRY, RETRY, RETRY, RETRY, RETRY, RETRY, NOTHING, NOTHING),
    "approval pending":                 (NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING),
    "approval expired":                 (ESC, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "mitigation approval expired":      (ASSESS, ASSESS, ASSESS, ASSESS, ASSESS, ASSESS, NOTHING, NOTHING),
    "kill switch":                      (ESC, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "step blocked":                     (ESC, ESC, ESC, ESC, ESC, ESC, NOTHING, NOTHING),
    "escalated without a page":         (MITIGATE, MITIGATE, MITIGATE, MITIGATE, MITIGATE, MITIGATE, NOTHING, ESC),
    "re-opened, nothing named":         (ASSESS, HINTS, HINTS, HINTS, HINTS, HINTS, NOTHING, NOTHING),
    "re-opened, hints everywhere":      (ASSESS, VERIFY, VERIFY, VERIFY, VERIFY, VERIFY, NOTHING, NOTHING),
    "re-opened, named node replayed":   (ASSESS, VERIFY, VERIFY, VERIFY, VERIFY, VERIFY, NOTHING, NOTHING),
}
# fmt: on

ROWS = {
    (state, name): steps[i]
    for name, steps in TABLE.items()
    if len(steps) == len(STATES)
    for i, state in enumerate(STATES)
}


def run_case(state: IncidentState, name: str, **controls: object) -> Decision:
    case = SITUATIONS[name]
    return decide(replace(case.facts, state=state), case.obs, replace(case.controls, **controls))


def test_every_state_and_situation_has_a_row() -> None:
    pairs = set(itertools.product(STATES, SITUATIONS))
    assert set(STATES) == set(IncidentState)
    assert set(TABLE) == set(SITUATIONS)
    assert set(ROWS) == pairs, sorted(pairs - set(ROWS))


@pytest.mark.parametrize(("state", "name"), sorted(ROWS), ids=lambda v: str(v).replace(" ", "-"))
def test_table(state: IncidentState, name: str) -> None:
    d = run_case(state, name)
    assert d.step is ROWS[(state, name)], d.reason
    assert d.reason and d.level is AutomationLevel.ACT


def test_below_act_the_assessment_comes_before_a_side_effect_is_asked_or_recorded() -> None:
    """A person asked to approve (or shown) the mitigation sees the plan first; at `act` mitigation is first."""
    case = SITUATIONS["node down, unmitigated"]
    for level in (AutomationLevel.PROPOSE, AutomationLevel.OBSERVE):
        d = decide(replace(case.facts, state=S.ASSESSING), case.obs, Controls(level=level))
        assert (d.step, d.execution) == (Step.ASSESS, Execution.RUN), d
    assert decide(replace(case.facts, state=S.ASSESSING), case.obs, Controls()).step is Step.MITIGATE
