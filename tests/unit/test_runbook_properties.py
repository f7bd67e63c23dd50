"""Runbook properties over any timeline (Hypothesis; profiles in tests/conftest.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.runbook import decide, remedied, seen_down, transitions_to
from cassandra_recovery.logic.runbook_model import (
    ACTING_STEPS,
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
NAMES = ("node1", "node2", "node3")
T = TypeVar("T")


def seconds_ago(low: int, high: int) -> st.SearchStrategy[datetime]:
    return st.integers(low, high).map(lambda s: NOW - timedelta(seconds=s))


def sometimes(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """None seven times in eight: rare facts (a block, a pending approval, the kill switch) stay rare."""
    return st.integers(0, 7).flatmap(lambda i: strategy if i == 0 else st.none())


def mostly(common: T, *others: T) -> st.SearchStrategy[T]:
    return st.sampled_from([common] * 6 + list(others))


# Outages 600-4000 s ago; remedies, verifications and plans 0-3000 s ago, so they often come after the outage.
outage = seconds_ago(600, 4000)
later = st.none() | seconds_ago(0, 3000)
either = seconds_ago(-4000, 4000)  # past or future
names = st.sampled_from(NAMES)
histories = st.lists(
    st.builds(
        NodeHistory,
        node=names,
        down_since=outage,
        last_seen_down=outage,
        reported_by_trigger=st.booleans(),
        hints_watched_at=later,
        hints_stalled_at=sometimes(seconds_ago(0, 3000)),
        repaired_at=sometimes(seconds_ago(0, 3000)),
    ),
    max_size=3,
    unique_by=lambda n: n.node,
).map(tuple)
plans = st.none() | st.builds(
    PlanView,
    action=mostly(PlanAction.WAIT_FOR_HINTS, *PlanAction),
    targets=st.lists(names, unique=True, max_size=3).map(tuple),
    made_at=seconds_ago(0, 4000),
    replaceable=st.frozensets(names),
    known_condition=sometimes(st.just("maintenance window m-1")),
)
active = [S.ASSESSING, S.RECOVERING, S.VERIFYING, S.MONITORING]
facts_st = st.builds(
    IncidentFacts,
    state=st.sampled_from([*active, *active, *IncidentState]),
    run=st.builds(RunFacts, mostly(RunStatus.SELF, *RunStatus), st.integers(0, 4), st.none() | st.just("boom")),
    nodes=histories,
    last_trigger_at=st.none() | seconds_ago(0, 4000),
    mitigated=st.booleans(),
    mitigation_declined=st.booleans(),
    verification=st.none() | st.builds(VerificationFact, seconds_ago(0, 3000), mostly(Verdict.CONVERGED, *Verdict)),
    fixed_at=sometimes(seconds_ago(0, 3000)),
    approval=sometimes(st.builds(PendingApproval, st.sampled_from(sorted(ACTING_STEPS)), either)),
    blocked=sometimes(st.just("repair escalated")),
    follow_up_at=st.none() | either,
    paged=st.booleans(),
)
observations = st.builds(
    Observation, now=st.just(NOW), down=st.just(frozenset()) | st.frozensets(names, max_size=2), plan=plans
)
controls_st = st.builds(
    Controls,
    level=st.sampled_from(AutomationLevel),
    kill_switch=sometimes(st.just("set by alice")),
    max_run_retries=st.integers(0, 3),
    heal_timeout_s=st.sampled_from([60.0, 900.0, 7200.0]),
    follow_up_s=st.sampled_from([0.0, 86400.0]),
)


@st.composite
def nearly_closed(draw: st.DrawFn) -> tuple[IncidentFacts, Observation]:
    """An incident whose nodes were replayed and verified, then perhaps one perturbation: a node seen down again
    (before or after the verification), down now, a verification moved before the outage, a newly reported node."""
    chosen = draw(st.lists(names, unique=True, max_size=3))
    nodes = []
    for name in chosen:
        seen_at = draw(seconds_ago(1500, 4000))
        nodes.append(
            NodeHistory(name, seen_at, seen_at, hints_watched_at=seen_at + timedelta(seconds=draw(st.integers(1, 500))))
        )
    marks = [n.last_seen_down for n in nodes] + [n.hints_watched_at for n in nodes if n.hints_watched_at]
    verified_at = max(marks, default=NOW - timedelta(seconds=1400)) + timedelta(seconds=draw(st.integers(1, 200)))
    verdict = draw(mostly(Verdict.CONVERGED, *Verdict))
    down: frozenset[str] = frozenset()
    perturbation = draw(st.sampled_from(["none", "seen again", "down now", "verified early", "new node"]))
    if perturbation == "seen again" and nodes:
        nodes[0] = replace(nodes[0], last_seen_down=draw(seconds_ago(0, 1500)))
    elif perturbation == "down now" and nodes:
        down = frozenset({nodes[0].node})
    elif perturbation == "verified early" and nodes:
        verified_at = nodes[0].last_seen_down - timedelta(seconds=draw(st.integers(0, 100)))
    elif perturbation == "new node" and len(nodes) < len(NAMES):
        new = next(n for n in NAMES if n not in chosen)
        at = draw(seconds_ago(0, 1000))
        nodes.append(NodeHistory(new, at, at, reported_by_trigger=True))
    plan_at = max([n.down_since for n in nodes], default=NOW - timedelta(seconds=4000)) + timedelta(seconds=1)
    plan = PlanView(PlanAction.WAIT_FOR_HINTS, tuple(chosen), plan_at)
    facts = IncidentFacts(
        draw(st.sampled_from(active)),
        RunFacts(draw(mostly(RunStatus.SELF, RunStatus.NONE))),
        tuple(nodes),
        last_trigger_at=plan_at - timedelta(seconds=1),
        mitigated=draw(st.booleans()),
        verification=VerificationFact(verified_at, verdict),
        follow_up_at=draw(st.none() | either),
    )
    return facts, Observation(NOW, down, plan)


def _waiting_for_approval(facts: IncidentFacts) -> bool:
    return facts.approval is not None and NOW < facts.approval.deadline


def check_nothing_seen_down_is_left_unverified(
    facts: IncidentFacts, obs: Observation, controls: Controls, d: Decision
) -> None:
    monitored_idle = d.step is Step.NOTHING and d.state is S.MONITORING and facts.run.status is not RunStatus.OTHER
    if d.step in (Step.RESOLVE, Step.SCHEDULE_FOLLOW_UP) or (monitored_idle and not _waiting_for_approval(facts)):
        v = facts.verification
        for n in seen_down(facts, obs).values():
            assert remedied(n, obs.down), (n, d)
            assert v is not None and v.verdict is Verdict.CONVERGED and v.at > n.last_seen_down, (n, v, d)


def check_the_level_is_on_every_decision_and_limits_it(
    facts: IncidentFacts, obs: Observation, controls: Controls, d: Decision
) -> None:
    assert d.level is controls.level and d.reason
    if d.step not in ACTING_STEPS:
        assert d.execution is Execution.RUN
    elif controls.level is AutomationLevel.OBSERVE:
        assert d.execution is Execution.RECORD
    elif controls.level is AutomationLevel.PROPOSE or d.step is Step.REPLACE_ASK_APPROVAL:
        assert d.execution is Execution.ASK
    else:
        assert d.execution is Execution.RUN


def check_the_kill_switch_never_yields_an_acting_step(
    facts: IncidentFacts, obs: Observation, controls: Controls, d: Decision
) -> None:
    if controls.kill_switch is not None:
        assert d.step not in ACTING_STEPS
        if d.proposed is not None:
            assert d.step is Step.ESCALATE and controls.kill_switch in d.reason


def check_always_someone_acting(facts: IncidentFacts, obs: Observation, controls: Controls, d: Decision) -> None:
    """`nothing` only when someone else acts: a live run, the suspended run before its deadline, the scheduled
    follow-up, a paged person; a retry only within the bound."""
    run = facts.run
    if d.step is Step.NOTHING:
        assert (
            facts.state is S.RESOLVED
            or (facts.state is S.ESCALATED and facts.paged)
            or run.status is RunStatus.OTHER
            or (_waiting_for_approval(facts) and run.status in (RunStatus.SELF, RunStatus.SUSPENDED))
            or (facts.state is S.MONITORING and facts.follow_up_at is not None and facts.follow_up_at > NOW)
        ), d
    if d.step is Step.RETRY:
        attempt = max(run.failures, 1) if run.status is RunStatus.FAILED else run.failures + 1
        assert attempt <= controls.max_run_retries and f"retry {attempt} of" in d.reason


def check_mitigation_comes_before_the_assessment(
    facts: IncidentFacts, obs: Observation, controls: Controls, d: Decision
) -> None:
    # When the automation acts; below `act` a person is shown the plan first, so the assessment comes first.
    if d.step is Step.ASSESS and controls.level is AutomationLevel.ACT:
        owed = [n for n in seen_down(facts, obs).values() if not remedied(n, obs.down)]
        expired = facts.approval is not None and facts.approval.step is Step.MITIGATE and NOW >= facts.approval.deadline
        assert not owed or facts.mitigated or facts.mitigation_declined or expired


def check_every_decision_is_reachable_by_allowed_transitions(
    facts: IncidentFacts, obs: Observation, controls: Controls, d: Decision
) -> None:
    if facts.state is S.RESOLVED:
        assert (d.step, d.state) == (Step.NOTHING, S.RESOLVED)
    else:
        transitions_to(facts.state, d.state)  # raises when no walk of allowed transitions gets there


CHECKS = (
    check_nothing_seen_down_is_left_unverified,
    check_the_level_is_on_every_decision_and_limits_it,
    check_the_kill_switch_never_yields_an_acting_step,
    check_always_someone_acting,
    check_mitigation_comes_before_the_assessment,
    check_every_decision_is_reachable_by_allowed_transitions,
)


@given(facts_st, observations, controls_st)
def test_every_decision_keeps_every_invariant(facts: IncidentFacts, obs: Observation, controls: Controls) -> None:
    """One generated timeline, every check (a failure names the check in its traceback)."""
    d = decide(facts, obs, controls)
    for check in CHECKS:
        check(facts, obs, controls, d)


@given(nearly_closed(), controls_st)
def test_a_nearly_closed_incident_closes_only_when_everything_is_proven(
    case: tuple[IncidentFacts, Observation], controls: Controls
) -> None:
    facts, obs = case
    d = decide(facts, obs, controls)
    for check in CHECKS:
        check(facts, obs, controls, d)
