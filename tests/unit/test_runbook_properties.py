"""Runbook properties over any timeline (Hypothesis; profiles in tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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

past = st.integers(0, 4000).map(lambda s: NOW - timedelta(seconds=s))
either = st.integers(-4000, 4000).map(lambda s: NOW - timedelta(seconds=s))  # past or future
maybe = st.none() | past
names = st.sampled_from(NAMES)
histories = st.lists(
    st.builds(
        NodeHistory,
        node=names,
        down_since=past,
        last_seen_down=past,
        reported_by_trigger=st.booleans(),
        hints_watched_at=maybe,
        hints_stalled_at=maybe,
        repaired_at=maybe,
    ),
    max_size=3,
    unique_by=lambda n: n.node,
).map(tuple)
plans = st.none() | st.builds(
    PlanView,
    action=st.sampled_from(PlanAction),
    targets=st.lists(names, unique=True, max_size=3).map(tuple),
    made_at=past,
    replaceable=st.frozensets(names),
    known_condition=st.none() | st.just("maintenance window m-1"),
)
facts_st = st.builds(
    IncidentFacts,
    state=st.sampled_from(IncidentState),
    run=st.builds(RunFacts, st.sampled_from(RunStatus), st.integers(0, 4), st.none() | st.just("boom")),
    nodes=histories,
    last_trigger_at=maybe,
    mitigated=st.booleans(),
    mitigation_declined=st.booleans(),
    verification=st.none() | st.builds(VerificationFact, past, st.sampled_from(Verdict)),
    fixed_at=maybe,
    approval=st.none() | st.builds(PendingApproval, st.sampled_from(sorted(ACTING_STEPS)), either),
    blocked=st.none() | st.just("repair escalated"),
    follow_up_at=st.none() | either,
    paged=st.booleans(),
)
observations = st.builds(Observation, now=st.just(NOW), down=st.frozensets(names), plan=plans)
controls_st = st.builds(
    Controls,
    level=st.sampled_from(AutomationLevel),
    kill_switch=st.none() | st.just("set by alice"),
    max_run_retries=st.integers(0, 3),
    heal_timeout_s=st.sampled_from([60.0, 900.0]),
    follow_up_s=st.sampled_from([0.0, 86400.0]),
)


def _waiting_for_approval(facts: IncidentFacts) -> bool:
    return facts.approval is not None and NOW < facts.approval.deadline


@given(facts_st, observations, controls_st)
def test_nothing_seen_down_is_left_unverified(facts: IncidentFacts, obs: Observation, controls: Controls) -> None:
    d = decide(facts, obs, controls)
    monitored_idle = d.step is Step.NOTHING and d.state is S.MONITORING and facts.run.status is not RunStatus.OTHER
    if d.step in (Step.RESOLVE, Step.SCHEDULE_FOLLOW_UP) or (monitored_idle and not _waiting_for_approval(facts)):
        v = facts.verification
        for n in seen_down(facts, obs).values():
            assert remedied(n, obs.down), (n, d)
            assert v is not None and v.verdict is Verdict.CONVERGED and v.at > n.last_seen_down, (n, v, d)


@given(facts_st, observations, controls_st)
def test_the_level_is_on_every_decision_and_limits_it(
    facts: IncidentFacts, obs: Observation, controls: Controls
) -> None:
    d = decide(facts, obs, controls)
    assert d.level is controls.level and d.reason
    if d.step not in ACTING_STEPS:
        assert d.execution is Execution.RUN
    elif controls.level is AutomationLevel.OBSERVE:
        assert d.execution is Execution.RECORD
    elif controls.level is AutomationLevel.PROPOSE or d.step is Step.REPLACE_ASK_APPROVAL:
        assert d.execution is Execution.ASK
    else:
        assert d.execution is Execution.RUN


@given(facts_st, observations, controls_st)
def test_the_kill_switch_never_yields_an_acting_step(
    facts: IncidentFacts, obs: Observation, controls: Controls
) -> None:
    d = decide(facts, obs, controls)
    if controls.kill_switch is not None:
        assert d.step not in ACTING_STEPS
        if d.proposed is not None:
            assert d.step is Step.ESCALATE and controls.kill_switch in d.reason


@given(facts_st, observations, controls_st)
def test_always_someone_acting(facts: IncidentFacts, obs: Observation, controls: Controls) -> None:
    """`nothing` only when someone else acts: a live run, the suspended run before its deadline, the scheduled
    follow-up, a paged person; a retry only within the bound."""
    d = decide(facts, obs, controls)
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


@given(facts_st, observations, controls_st)
def test_mitigation_comes_before_the_assessment(facts: IncidentFacts, obs: Observation, controls: Controls) -> None:
    d = decide(facts, obs, controls)
    if d.step is Step.ASSESS:
        owed = [n for n in seen_down(facts, obs).values() if not remedied(n, obs.down)]
        expired = facts.approval is not None and facts.approval.step is Step.MITIGATE and NOW >= facts.approval.deadline
        assert not owed or facts.mitigated or facts.mitigation_declined or expired


@given(facts_st, observations, controls_st)
def test_every_decision_is_reachable_by_allowed_transitions(
    facts: IncidentFacts, obs: Observation, controls: Controls
) -> None:
    d = decide(facts, obs, controls)
    if facts.state is S.RESOLVED:
        assert (d.step, d.state) == (Step.NOTHING, S.RESOLVED)
    else:
        transitions_to(facts.state, d.state)  # raises when no walk of allowed transitions gets there
