"""The runbook as one pure function (Patroni's HA loop): incident facts + a fresh observation -> the next step.

How the incident run executes it (`flows/incident_loop.py`): a short loop that holds the lease (kept by a
heartbeat),
  1. derives IncidentFacts from the incident and its timeline (`logic/incident_facts.py`), takes the run's first
     look at the cluster (a probe), and calls `decide(facts, observation, controls)`;
  2. records the decision (`runbook_step`: step, reason, level, execution) on the timeline, walks the incident to
     `decision.state` along `transitions_to`, then runs the step: RUN does it, ASK suspends for one approval of
     the plan (or of a replacement), RECORD writes the proposal and escalates (the `observe` level);
  3. the step's outcome lands on the timeline (healed, hints_drained, repaired, verified, ...), read back by the
     next decision, until the step is NOTHING, ESCALATE or RESOLVE (or the run suspends). A step that cannot
     finish sets `blocked` for that run, so the next decision escalates.
The failed-run resumer calls the same function as an outside observer (RunStatus FAILED): RETRY starts the run
again; NOTHING names who acts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.incident_states import ALLOWED, IncidentState
from cassandra_recovery.logic.runbook_model import (
    ACTING_STEPS,
    AutomationLevel,
    Controls,
    Decision,
    Execution,
    IncidentFacts,
    NodeHistory,
    Observation,
    PlanView,
    RunStatus,
    Step,
    Verdict,
)

S = IncidentState


@dataclass(frozen=True)
class _Draft:
    step: Step
    reason: str
    targets: tuple[str, ...] = ()
    until: datetime | None = None


def decide(facts: IncidentFacts, obs: Observation, controls: Controls) -> Decision:
    """The next step for the incident and why; the automation level and the kill switch are applied last."""
    draft = _next(facts, obs, controls)
    return _govern(draft, facts.state, controls)


def seen_down(facts: IncidentFacts, obs: Observation) -> dict[str, NodeHistory]:
    """Every node seen down during the incident; one down now counts as seen down now."""
    nodes = {n.node: n for n in facts.nodes}
    for name in sorted(obs.down):
        known = nodes.get(name)
        if known is None or remedied(known, frozenset()):  # first seen, or down again after its remedy
            nodes[name] = NodeHistory(
                name, obs.now, obs.now, reported_by_trigger=bool(known and known.reported_by_trigger)
            )
        else:
            nodes[name] = replace(known, last_seen_down=obs.now)
    return nodes


def remedied(n: NodeHistory, down_now: frozenset[str]) -> bool:
    """Back, and its missed writes replayed (hints watched to the end) or repaired after it was last seen down."""
    done = [t for t in (n.hints_watched_at, n.repaired_at) if t is not None and t > n.last_seen_down]
    return n.node not in down_now and bool(done)


def _next(facts: IncidentFacts, obs: Observation, controls: Controls) -> _Draft:
    if facts.state is S.RESOLVED:
        return _Draft(Step.NOTHING, "resolved: a new failure opens a new incident")
    if facts.state is S.ESCALATED:
        if facts.paged:
            return _Draft(Step.NOTHING, "escalated: a paged person owns the incident (may hand it back)")
        return _Draft(Step.ESCALATE, "escalated but nobody was paged: page now")
    run = facts.run
    if run.status is RunStatus.OTHER:
        return _Draft(Step.NOTHING, "a live run holds the incident's lease and acts")
    if run.status is RunStatus.FAILED:
        why = f"the incident run failed: {run.last_failure or 'no reason recorded'}"
        return _after_failure(max(run.failures, 1), controls, why)
    pending = facts.approval
    if pending and obs.now < pending.deadline and run.status in (RunStatus.SELF, RunStatus.SUSPENDED):
        why = f"the suspended run waits for approval of {pending.step} until {pending.deadline.isoformat()}"
        return _Draft(Step.NOTHING, why, pending.targets, pending.deadline)
    draft = _lifecycle(facts, obs, controls)
    if run.status is RunStatus.SELF or draft.step in (Step.NOTHING, Step.ESCALATE):
        return draft
    # SUSPENDED past its deadline is resumed by the approval expirer and continues as the acting run.
    if run.status is RunStatus.SUSPENDED and pending is not None:
        return draft
    # An orphaned incident (nobody holds the lease, work is owed) counts as one more failed run.
    why = f"no run holds the lease, so nobody would {draft.step}: {draft.reason}"
    return _after_failure(run.failures + 1, controls, why)


def _after_failure(failures: int, controls: Controls, why: str) -> _Draft:
    """The n-th failed (or orphaned) run is retried while n <= the bound, the reason going on the timeline."""
    limit = controls.max_run_retries
    if failures <= limit:
        return _Draft(Step.RETRY, f"{why}; retry {failures} of {limit}")
    return _Draft(Step.ESCALATE, f"{why}; {failures - 1} retries used (limit {limit}): a person must take over")


def _lifecycle(facts: IncidentFacts, obs: Observation, controls: Controls) -> _Draft:
    now, plan = obs.now, obs.plan
    nodes = seen_down(facts, obs)
    mitigation_declined, blocked = facts.mitigation_declined, facts.blocked
    if facts.approval and now >= facts.approval.deadline:  # expired: a refusal
        expired = f"approval of {facts.approval.step} expired at {facts.approval.deadline.isoformat()}"
        if facts.approval.step is Step.MITIGATE:
            mitigation_declined = True
        else:
            blocked = blocked or expired
    if blocked:
        return _Draft(Step.ESCALATE, blocked)
    owed = sorted((n for n in nodes.values() if not remedied(n, obs.down)), key=lambda n: n.node)
    owed_names = tuple(n.node for n in owed)
    mitigate = _Draft(Step.MITIGATE, f"seen down: {', '.join(owed_names)}: reversible mitigation first", owed_names)
    wants_mitigation = bool(owed) and not facts.mitigated and not mitigation_declined

    stale = _stale_plan(facts, owed, plan)
    if stale:
        # Mitigation before the assessment is for speed when the automation acts; a person asked to approve a
        # side effect (or shown what would be done) is shown the plan first, which an assessment makes in seconds.
        first = wants_mitigation and controls.level is AutomationLevel.ACT
        return mitigate if first else _Draft(Step.ASSESS, stale, owed_names)
    assert plan is not None  # noqa: S101 - _stale_plan says so when it is None
    if plan.action is PlanAction.ESCALATE:
        return _Draft(Step.ESCALATE, "the assessment escalates: " + "; ".join(plan.reasons[:3]), plan.targets)
    if plan.known_condition and owed:
        why = f"known condition ({plan.known_condition}): reported, not acted on; a person owns the recovery"
        return _Draft(Step.ESCALATE, why, owed_names)
    if wants_mitigation:
        return mitigate
    if owed:
        return _recover(owed, obs, controls)
    reopened, everywhere = facts.reopened_at, facts.all_hints_watched_at
    named = reopened is not None and any(n.last_seen_down >= reopened for n in nodes.values())
    if reopened is not None and not named and not (everywhere and everywhere > reopened):
        why = "re-opened from monitoring: watch hint replay to every node finish, then the write queue, then verify"
        return _Draft(Step.WATCH_HINTS, why)
    return _verify_and_close(facts, nodes, obs, controls)


def _stale_plan(facts: IncidentFacts, owed: list[NodeHistory], plan: PlanView | None) -> str | None:
    """Why the incident must be (re-)assessed first, or None when the newest plan still answers."""
    if facts.state is S.DETECTED:
        return "a detected incident is assessed first"
    if plan is None:
        return "no plan yet"
    if facts.last_trigger_at and plan.made_at < facts.last_trigger_at:
        # A trigger about nodes the plan already covers (an alert confirming what the detector reported) adds
        # nothing; one naming no known node, or a node the plan does not cover, is something new to assess.
        named = facts.last_trigger_nodes
        if not named or any(n not in plan.targets for n in named):
            return f"a trigger at {facts.last_trigger_at.isoformat()} is newer than the plan: re-assess and verify"
    newer = [n.node for n in owed if n.down_since > plan.made_at]
    if newer:
        return f"{', '.join(newer)} went down after the plan was made: re-assess"
    return None


def _recover(owed: list[NodeHistory], obs: Observation, controls: Controls) -> _Draft:
    """Nodes seen down and not yet remedied: wait for them, then hints (or a repair, or a replacement)."""
    plan = obs.plan
    assert plan is not None  # noqa: S101 - only called with a current plan
    covered = set(plan.targets)
    replace_ = [n.node for n in owed if n.node in covered and plan.action is PlanAction.WIPE_AND_REPLACE]
    if replace_:
        return _Draft(Step.REPLACE_ASK_APPROVAL, "past gc_grace: wipe and replace, behind an approval", tuple(replace_))
    heal = timedelta(seconds=controls.heal_timeout_s)
    down = [n for n in owed if n.node in obs.down]
    if down:
        late = [n for n in down if obs.now >= n.down_since + heal]
        dead = tuple(n.node for n in late if n.node in plan.replaceable)
        if dead:
            why = f"dead process not back within the {controls.heal_timeout_s:.0f} s heal timeout: replace"
            return _Draft(Step.REPLACE_ASK_APPROVAL, why, dead)
        if late:
            names = ", ".join(n.node for n in late)
            why = f"{names} not back within {controls.heal_timeout_s:.0f} s and not a dead process: a person decides"
            return _Draft(Step.ESCALATE, why, tuple(n.node for n in late))
        until = min(n.down_since + heal for n in down)
        return _Draft(Step.WAIT_FOR_HEAL, "down now: wait for it to return", tuple(n.node for n in down), until)
    stalled = [n.node for n in owed if n.hints_stalled_at and n.hints_stalled_at > n.last_seen_down]
    planned = [n.node for n in owed if n.node in covered and plan.action is PlanAction.REPAIR]
    hints = [n.node for n in owed if n.node not in stalled and n.node not in planned]
    if hints:
        fallback = [n for n in hints if n not in covered or plan.action is not PlanAction.WAIT_FOR_HINTS]
        why = "back: watch hint replay finish, then the write queue"
        if fallback:
            why += f" ({', '.join(fallback)} seen down but not named by the plan: hints watched anyway)"
        return _Draft(Step.WATCH_HINTS, why, tuple(hints))
    why = "hint replay stalled: repair instead" if stalled else "hints cannot be trusted: repair its ranges"
    return _Draft(Step.REPAIR, why, tuple(sorted({*stalled, *planned})))


def _verify_and_close(
    facts: IncidentFacts, nodes: dict[str, NodeHistory], obs: Observation, controls: Controls
) -> _Draft:
    """Everything seen down is back and replayed: a converged verification after it all, then close."""
    now, state = obs.now, facts.state
    marks = [t for n in nodes.values() for t in (n.last_seen_down, n.hints_watched_at, n.repaired_at) if t]
    marks += [t for t in (facts.reopened_at, facts.all_hints_watched_at) if t]
    after = max(marks, default=None)  # a proof must be strictly later than all of these
    due_at = facts.follow_up_at if state is S.MONITORING else None
    follow_up_due = due_at is not None and now >= due_at
    needs_proof = bool(nodes) or state not in (S.DETECTED, S.ASSESSING) or facts.reopened_at is not None
    v = facts.verification
    stale = (
        v is None or (after is not None and v.at <= after) or (follow_up_due and due_at is not None and v.at < due_at)
    )
    if needs_proof and stale:
        what = "the follow-up verification is due" if follow_up_due else "prove every replica converged"
        since = max((t for t in (after, due_at if follow_up_due else None) if t), default=None)
        return _Draft(Step.VERIFY, f"{what} (after {since.isoformat() if since else 'the outage'})")
    if v is not None and needs_proof:
        fixed = facts.fixed_at if facts.fixed_at and (after is None or facts.fixed_at > after) else None
        if fixed and fixed >= v.at:
            return _Draft(Step.VERIFY, "verify again after the targeted fix")
        if v.verdict is Verdict.CANNOT_VERIFY:
            return _Draft(Step.ESCALATE, "the data cannot be proven converged")
        if v.verdict is Verdict.DIVERGED:
            if fixed:
                return _Draft(Step.ESCALATE, "still diverged after the targeted fix")
            return _Draft(Step.FIX_DIVERGENCE, "the verification found differences: fix them, then verify again")
    if facts.mitigated:
        return _Draft(Step.RESTORE_NORMAL, "verified converged: lift the mitigation")
    if state is S.MONITORING:
        if facts.follow_up_at is None:
            why = "monitored with no follow-up scheduled"
            return _Draft(Step.SCHEDULE_FOLLOW_UP, why, until=_follow_up(now, controls))
        if not follow_up_due:
            why = f"the follow-up verification at {facts.follow_up_at.isoformat()} acts next"
            return _Draft(Step.NOTHING, why, until=facts.follow_up_at)
        return _Draft(Step.RESOLVE, "the follow-up verification passed")
    if not nodes:
        return _Draft(Step.RESOLVE, "no node was seen down during the incident")
    if controls.follow_up_s > 0:
        why = "verified converged: monitor until the follow-up verification"
        return _Draft(Step.SCHEDULE_FOLLOW_UP, why, until=_follow_up(now, controls))
    return _Draft(Step.RESOLVE, "verified converged (no follow-up configured)")


def _follow_up(now: datetime, controls: Controls) -> datetime:
    return now + timedelta(seconds=controls.follow_up_s)


def _govern(draft: _Draft, state: IncidentState, controls: Controls) -> Decision:
    """The kill switch turns an acting step into an escalation; the level says run, ask or record."""
    level, step = controls.level, draft.step
    if step in ACTING_STEPS and controls.kill_switch is not None:
        why = f"automation stopped ({controls.kill_switch}): {step} not run: {draft.reason}"
        esc = Step.ESCALATE
        return Decision(esc, why, level, Execution.RUN, _state_for(esc, state), draft.targets, proposed=step)
    execution = Execution.RUN
    if step in ACTING_STEPS:
        if level is AutomationLevel.OBSERVE:
            execution = Execution.RECORD
        elif level is AutomationLevel.PROPOSE or step is Step.REPLACE_ASK_APPROVAL:
            execution = Execution.ASK
    return Decision(step, draft.reason, level, execution, _state_for(step, state), draft.targets, draft.until)


_STATE_OF_STEP: dict[Step, IncidentState] = {
    Step.ASSESS: S.ASSESSING,
    Step.WAIT_FOR_HEAL: S.RECOVERING,
    Step.WATCH_HINTS: S.RECOVERING,
    Step.REPAIR: S.RECOVERING,
    Step.REPLACE_ASK_APPROVAL: S.RECOVERING,
    Step.VERIFY: S.VERIFYING,
    Step.FIX_DIVERGENCE: S.VERIFYING,
    Step.RESTORE_NORMAL: S.VERIFYING,
    Step.SCHEDULE_FOLLOW_UP: S.MONITORING,
    Step.RESOLVE: S.RESOLVED,
    Step.ESCALATE: S.ESCALATED,
}


def _state_for(step: Step, current: IncidentState) -> IncidentState:
    """Mitigation, retries and waiting keep the state; verification of a monitored incident stays monitored."""
    target = _STATE_OF_STEP.get(step, current)
    if current is S.MONITORING and target is S.VERIFYING:
        return S.MONITORING
    return target


def transitions_to(current: IncidentState, target: IncidentState) -> tuple[IncidentState, ...]:
    """The shortest walk of allowed transitions from current to target (empty when already there)."""
    if current is target:
        return ()
    queue: deque[tuple[IncidentState, tuple[IncidentState, ...]]] = deque([(current, ())])
    seen = {current}
    while queue:
        state, path = queue.popleft()
        for nxt in sorted(ALLOWED[state]):
            if nxt in seen:
                continue
            if nxt is target:
                return (*path, nxt)
            seen.add(nxt)
            queue.append((nxt, (*path, nxt)))
    raise ValueError(f"no allowed walk from {current} to {target}")
