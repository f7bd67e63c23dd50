"""Runbook invariants: whole incidents replayed through a fake executor, and properties over any timeline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.runbook import decide
from cassandra_recovery.logic.runbook_model import (
    AutomationLevel,
    Controls,
    Execution,
    IncidentFacts,
    NodeHistory,
    Observation,
    PlanView,
    RunFacts,
    RunStatus,
    Step,
    Verdict,
    VerificationFact,
)
from tests import faults as F
from tests.unit.runbook_sim import World, run, steps

pytestmark = pytest.mark.area("incident")

S = IncidentState
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
N1, N2, N3 = "node1", "node2", "node3"
SELF = RunFacts(RunStatus.SELF)
# Recovered from an earlier outage of node3, verified and monitored until the follow-up verification.
EARLIER = NodeHistory(N3, NOW - timedelta(hours=3), NOW - timedelta(hours=3), True, NOW - timedelta(hours=2))
MONITORED = IncidentFacts(
    S.MONITORING,
    SELF,
    nodes=(EARLIER,),
    last_trigger_at=NOW - timedelta(hours=3),
    verification=VerificationFact(NOW - timedelta(hours=2), Verdict.CONVERGED),
    follow_up_at=NOW + timedelta(hours=21),
)
OLD_PLAN = PlanView(PlanAction.WAIT_FOR_HINTS, (N3,), NOW - timedelta(hours=3))
CLEAN_RECOVERY = [
    Step.MITIGATE,
    Step.ASSESS,
    Step.WATCH_HINTS,
    Step.VERIFY,
    Step.RESTORE_NORMAL,
    Step.SCHEDULE_FOLLOW_UP,
    Step.NOTHING,
]


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# --- nothing seen down is left unverified --------------------------------------------------------------------------


@pytest.mark.fault(F.NODE_FROZEN, F.NODE_BACK_BEFORE_ASSESSMENT)
def test_monitored_incident_joined_by_a_run_that_saw_node1_down_replays_hints_and_verifies() -> None:
    """Observed: the run's detection saw node1 down, the assessment 11 s later said no_action ("no node is down")
    and the incident was resolved with no hint replay and no verification."""
    joined = replace(MONITORED, last_trigger_at=ago(12), nodes=(EARLIER, NodeHistory(N1, ago(15), ago(11))))
    world = World(joined, NOW, plan=OLD_PLAN)  # node1 is back: the assessment will say no_action
    decisions = run(world)
    assert steps(decisions) == CLEAN_RECOVERY
    assert decisions[2].targets == (N1,) and "not named by the plan" in decisions[2].reason
    assert world.plan is not None and world.plan.action is PlanAction.NO_ACTION
    assert world.facts.state is S.MONITORING and world.facts.verification is not None
    assert world.facts.verification.at > ago(11)


@pytest.mark.fault(F.NODE_FROZEN, F.NODE_BACK_BEFORE_ASSESSMENT)
def test_two_nodes_frozen_and_back_before_the_run_are_replayed_and_verified() -> None:
    """Observed: two of three nodes frozen for ~50 s, `respond` started after they returned: the run joined the
    monitored incident, found nothing down and returned `acting: false`."""
    reported = tuple(NodeHistory(n, ago(52), ago(2), reported_by_trigger=True) for n in (N1, N2))
    world = World(replace(MONITORED, last_trigger_at=ago(2), nodes=(EARLIER, *reported)), NOW, plan=OLD_PLAN)
    decisions = run(world)
    assert steps(decisions) == CLEAN_RECOVERY
    assert decisions[0].state is S.MONITORING  # mitigation does not wait for the assessment's state change
    assert decisions[1].state is S.ASSESSING and decisions[2].targets == (N1, N2)


def test_a_node_down_again_after_its_remedy_owes_it_all_again() -> None:
    world = World(replace(MONITORED, last_trigger_at=ago(400)), NOW, down={N3}, plan=OLD_PLAN)
    decisions = run(world)
    assert steps(decisions)[:3] == [Step.MITIGATE, Step.ASSESS, Step.WAIT_FOR_HEAL]
    assert steps(decisions)[3:] == CLEAN_RECOVERY[2:]


def test_a_new_incident_end_to_end_then_the_follow_up_closes_it() -> None:
    opened = IncidentFacts(S.DETECTED, SELF, (NodeHistory(N3, ago(30), ago(20), True),), last_trigger_at=ago(20))
    world = World(opened, NOW, down={N3})
    assert steps(run(world)) == [Step.MITIGATE, Step.ASSESS, Step.WAIT_FOR_HEAL, *CLEAN_RECOVERY[2:]]
    world.now = world.facts.follow_up_at or NOW
    assert steps(run(world)) == [Step.VERIFY, Step.RESOLVE]
    assert world.facts.state is S.RESOLVED


@pytest.mark.fault(F.CACHE_DIVERGED)
@pytest.mark.parametrize(
    ("verdicts", "tail"),
    [
        (
            [Verdict.DIVERGED],
            [Step.FIX_DIVERGENCE, Step.VERIFY, Step.RESTORE_NORMAL, Step.SCHEDULE_FOLLOW_UP, Step.NOTHING],
        ),
        ([Verdict.DIVERGED, Verdict.DIVERGED], [Step.FIX_DIVERGENCE, Step.VERIFY, Step.ESCALATE]),
        ([Verdict.CANNOT_VERIFY], [Step.ESCALATE]),
    ],
)
def test_a_divergence_is_fixed_once_then_escalated(verdicts: list[Verdict], tail: list[Step]) -> None:
    facts = IncidentFacts(S.ASSESSING, SELF, (NodeHistory(N3, ago(30), ago(20)),), mitigated=True)
    world = World(facts, NOW, plan=PlanView(PlanAction.WAIT_FOR_HINTS, (N3,), ago(10)), verdicts=verdicts)
    assert steps(run(world)) == [Step.WATCH_HINTS, Step.VERIFY, *tail]


# --- always someone acting -------------------------------------------------------------------------------------------

FAILED = RunFacts(RunStatus.FAILED, 1, "TimeoutError: _wait_until_free: the repair engine stayed busy")


@pytest.mark.fault(F.REPAIR_SEGMENT_STUCK)
def test_a_failed_run_is_retried_with_its_reason_and_the_new_run_carries_on() -> None:
    facts = IncidentFacts(S.RECOVERING, FAILED, (NodeHistory(N3, ago(60), ago(30)),), mitigated=True)
    decisions = run(World(facts, NOW, plan=PlanView(PlanAction.WAIT_FOR_HINTS, (N3,), ago(40))))
    assert decisions[0].step is Step.RETRY and "_wait_until_free" in decisions[0].reason
    assert "retry 1 of 2" in decisions[0].reason
    assert steps(decisions)[1:] == [Step.WATCH_HINTS, *CLEAN_RECOVERY[3:]]


@pytest.mark.parametrize(("failures", "step"), [(1, Step.RETRY), (2, Step.RETRY), (3, Step.ESCALATE)])
def test_failed_runs_are_retried_a_bounded_number_of_times(failures: int, step: Step) -> None:
    facts = IncidentFacts(S.RECOVERING, replace(FAILED, failures=failures), (NodeHistory(N3, ago(60), ago(30)),))
    d = decide(facts, Observation(NOW, frozenset({N3})), Controls(max_run_retries=2))
    assert d.step is step and "_wait_until_free" in d.reason


@pytest.mark.fault(F.FLOW_RUN_CRASHED)
def test_an_orphaned_incident_gets_a_run() -> None:
    facts = IncidentFacts(S.VERIFYING, RunFacts(RunStatus.NONE), (NodeHistory(N3, ago(60), ago(30), True, ago(20)),))
    d = run(World(facts, NOW, plan=PlanView(PlanAction.WAIT_FOR_HINTS, (N3,), ago(40))))[0]
    assert d.step is Step.RETRY and "nobody would verify" in d.reason


# --- mitigate first --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.DETECTED, S.ASSESSING, S.MONITORING])
@pytest.mark.fault(F.NODE_FROZEN)
def test_a_confirmed_node_is_mitigated_before_the_assessment(state: IncidentState) -> None:
    facts = IncidentFacts(state, SELF, (NodeHistory(N3, ago(12), ago(2), True),), last_trigger_at=ago(2))
    decisions = run(World(facts, NOW, down={N3}), max_steps=40)
    assert steps(decisions)[:2] == [Step.MITIGATE, Step.ASSESS]
    assert decisions[0].state is state and decisions[0].targets == (N3,)


# --- automation levels and the kill switch ---------------------------------------------------------------------------


def _outage(level: AutomationLevel, action: PlanAction = PlanAction.WAIT_FOR_HINTS, **kw: object) -> World:
    facts = IncidentFacts(S.DETECTED, SELF, (NodeHistory(N3, ago(30), ago(20), True),), last_trigger_at=ago(20))

    def assess(down: frozenset[str], now: datetime) -> PlanView:
        return PlanView(action, (N3,), now)

    return World(facts, NOW, down={N3}, controls=Controls(level=level), assess=assess, **kw)  # type: ignore[arg-type]


def test_observe_records_the_mitigation_and_the_hint_handoff_and_hands_the_incident_to_a_person() -> None:
    """Watching hint replay resumes hint handoff on the coordinators and delivers the write queue: a side effect,
    recorded only at `observe`, so a person owns the rest of the recovery."""
    world = _outage(AutomationLevel.OBSERVE)
    decisions = run(world)
    assert [(d.step, d.execution) for d in decisions] == [  # the plan first: it is what a person is shown
        (Step.ASSESS, Execution.RUN),
        (Step.MITIGATE, Execution.RECORD),
        (Step.WAIT_FOR_HEAL, Execution.RUN),
        (Step.WATCH_HINTS, Execution.RECORD),
        (Step.ESCALATE, Execution.RUN),
    ]
    assert all(d.level is AutomationLevel.OBSERVE for d in decisions)
    assert world.facts.mitigation_declined and not world.facts.mitigated


def test_observe_records_a_repair_and_hands_the_incident_to_a_person() -> None:
    decisions = run(_outage(AutomationLevel.OBSERVE, PlanAction.REPAIR))
    assert [(d.step, d.execution) for d in decisions[-2:]] == [
        (Step.REPAIR, Execution.RECORD),
        (Step.ESCALATE, Execution.RUN),
    ]
    assert "repair recorded only (observe)" in decisions[-1].reason


def test_propose_asks_before_each_side_effect() -> None:
    decisions = run(_outage(AutomationLevel.PROPOSE, PlanAction.REPAIR, approve=True))
    asked = [d.step for d in decisions if d.execution is Execution.ASK]
    assert asked == [Step.MITIGATE, Step.REPAIR, Step.RESTORE_NORMAL]
    assert all(d.execution is Execution.RUN for d in decisions if d.step not in asked)
    assert run(_outage(AutomationLevel.PROPOSE))[-1].execution is Execution.ASK  # unanswered: the run suspends


def test_propose_refused_mitigation_goes_on_without_it_and_a_refused_repair_escalates() -> None:
    decisions = run(_outage(AutomationLevel.PROPOSE, PlanAction.REPAIR, approve=False))
    assert steps(decisions) == [Step.ASSESS, Step.MITIGATE, Step.WAIT_FOR_HEAL, Step.REPAIR, Step.ESCALATE]
    assert "repair refused (propose)" in decisions[-1].reason


def test_act_asks_only_for_a_replacement() -> None:
    decisions = run(_outage(AutomationLevel.ACT, PlanAction.WIPE_AND_REPLACE, approve=True))
    assert [d.step for d in decisions if d.execution is Execution.ASK] == [Step.REPLACE_ASK_APPROVAL]
    assert steps(decisions)[:3] == [Step.MITIGATE, Step.ASSESS, Step.REPLACE_ASK_APPROVAL]


def test_the_kill_switch_escalates_instead_of_acting_with_the_reason() -> None:
    world = _outage(AutomationLevel.ACT)
    world.controls = replace(world.controls, kill_switch="set by alice (schema migration)")
    d = run(world)[0]
    assert (d.step, d.proposed, d.state) == (Step.ESCALATE, Step.MITIGATE, S.ESCALATED)
    assert d.reason.startswith("automation stopped (set by alice (schema migration)): mitigate not run")
