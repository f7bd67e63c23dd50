"""The incident run as a short loop over the runbook (Patroni's HA loop): read the incident's facts from its
timeline, ask `runbook.decide()` for the next step, record it, walk the incident to the step's state, run the
step, and loop until the runbook says nothing is left for this run (or it escalates, resolves or suspends).

Each executor below runs one step with the existing phase flows and records what it did on the timeline; the
next decision reads it back from there, so a resumed run, the crash resumer and this loop see the same facts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.contracts import (
    Detection,
    EventView,
    Evidence,
    KillSwitchDoc,
    PlanDoc,
    RecoveryDoc,
    SlackPostDoc,
    Trigger,
    VerifyDoc,
)
from cassandra_recovery.controls.killswitch import AutomationStopped
from cassandra_recovery.incident.lease_keeper import LeaseKeeper
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.approvals import PLAN, REPLACE, open_request, plan_approved
from cassandra_recovery.logic.automation import held_back, proposed_steps
from cassandra_recovery.logic.incident_facts import TimelineView, read_timeline
from cassandra_recovery.logic.incident_states import IncidentState as S
from cassandra_recovery.logic.reported import episode_start
from cassandra_recovery.logic.runbook import decide, remedied, transitions_to
from cassandra_recovery.logic.runbook_model import (
    AutomationLevel,
    Controls,
    Decision,
    Execution,
    Observation,
    RunFacts,
    RunStatus,
    Step,
)
from cassandra_recovery.logic.slack_approvals import Settled
from cassandra_recovery.settings import Settings
from flows.assess import assess
from flows.detect import detect
from flows.proposal import ask_plan_approval, refusal
from flows.recover import drain_and_compare, recover
from flows.replacement import EXPIRED, ask_approval, replace_and_verify
from flows.verify import verify
from tasks.incident import get_incident, incident_events, slack_reply, slack_thread, store_plan, transition
from tasks.observe import probe_nodes
from tasks.postmortem import incident_progress, write_postmortem
from tasks.recovery import (
    automation_level,
    automation_stopped,
    drain_hints,
    lift_mitigation,
    mitigate,
    mitigation_on,
    record_event,
    restore_normal,
    wait_until_up,
)
from tasks.verification import schedule_follow_up

MAX_STEPS = 40  # decisions in one run before the loop gives the incident to a person (a runbook that never settles)
# A transition repeated with the same inputs in one flow run (a second flap) must run, not come from the cache.
_move = transition.with_options(cache_policy=NO_CACHE, persist_result=False)


@dataclass
class IncidentRun:
    """What one run of an incident carries from step to step (everything else is on the timeline)."""

    cluster_id: str
    incident_id: str
    lease: Lease
    trigger: Trigger
    outage_started: str
    heal_timeout_s: float
    approval_timeout_s: float
    follow_up_s: float
    addresses: dict[str, str]
    plan: PlanDoc | None = None  # the newest plan
    plans: list[PlanDoc] = field(default_factory=list)  # the plans this run made, in order
    recovery: RecoveryDoc | None = None
    verification: VerifyDoc | None = None
    restored: dict[str, object] = field(default_factory=dict)  # the normal policy's restoration
    blocked: str | None = None  # why a step of this run could not finish: the next decision escalates
    detected: Detection | None = None  # a detection taken before its mitigation, for the assessment after it
    probed: bool = False
    slack: SlackPostDoc | None = None
    steps: list[str] = field(default_factory=list)
    keeper: LeaseKeeper | None = None  # the lease's heartbeat; stopped while the run waits for a person

    def check_lease(self) -> None:
        """LeaseLost when the heartbeat found the lease taken over or about to lapse: the run stops acting."""
        if self.keeper is not None:
            self.keeper.raise_if_lost()

    def asking(self, ask: Callable[[], Any]) -> Any:
        """A question to a person may suspend the run: the heartbeat stops first, so the longer lease the
        question takes (its deadline) is not shortened; it beats again once the answer is in."""
        if self.keeper is not None:
            self.keeper.stop()
        answer = ask()
        if self.keeper is not None:
            self.keeper.start()
        return answer

    @property
    def title(self) -> str:
        return f"Cassandra incident on {self.cluster_id}"

    def fields(self) -> dict[str, str]:
        plan: Mapping[str, Any] = self.plan or {}
        return {
            "cluster": self.cluster_id,
            "plan": str(plan.get("action", "none yet")),
            "down": ", ".join(plan.get("down") or plan.get("targets") or []) or "none",
            "reasons": "; ".join(plan.get("reasons", []))[:1900] or "-",
        }


def run_runbook(run: IncidentRun) -> str:
    """Decide and execute until nothing is left for this run; the incident's state at the end. An action the kill
    switch refused (or cancelled in flight) stops the run there: on the timeline, and escalated to a person."""
    try:
        return _decide_and_execute(run)
    except AutomationStopped as e:
        get_run_logger().warning("%s: escalating", e)
        record_event(run.incident_id, "automation_stopped", e.as_doc(), run.lease)
        return escalate(run, S(get_incident(run.incident_id)["state"]), f"{e}; a person decides", {"kill_switch": True})


def _decide_and_execute(run: IncidentRun) -> str:
    log = get_run_logger()
    for number in range(1, MAX_STEPS + 1):
        run.check_lease()
        incident = get_incident(run.incident_id)
        state, events = S(incident["state"]), incident_events(run.incident_id)
        if run.plan is None and incident.get("plan"):
            run.plan = incident["plan"]
        if state in (S.RESOLVED, S.ESCALATED):
            return state
        if (answered := _answer_pending_approval(run, state, events)) is not None:
            if answered in (S.RESOLVED, S.ESCALATED):
                return answered
            continue
        view = read_timeline(state, events, run.addresses, RunFacts(RunStatus.SELF))
        if not run.probed and _probe(run, view):
            continue  # a node the client cannot reach: on the timeline first, then decided on
        level = AutomationLevel(automation_level(run.cluster_id))
        stop = automation_stopped(run.cluster_id)
        controls = Controls(
            level=level,
            kill_switch=f"for {run.cluster_id} by {stop['set_by']}: {stop['reason']}" if stop else None,
            heal_timeout_s=run.heal_timeout_s,
            follow_up_s=run.follow_up_s,
        )
        facts = replace(view.facts, blocked=run.blocked)
        now = datetime.now(UTC)
        d = decide(facts, Observation(now, view.down_now, view.plan), controls)
        if d.execution is Execution.ASK and d.step is not Step.REPLACE_ASK_APPROVAL and plan_approved(events):
            d = replace(d, execution=Execution.RUN)  # a person approved the plan this step belongs to
        log.info("runbook step %d: %s (%s) %s", number, d.step, d.execution, d.reason)
        doc: dict[str, object] = {"n": number, "step": d.step.value, "execution": d.execution.value, "reason": d.reason}
        doc |= {"targets": list(d.targets), "level": level.value}
        record_event(run.incident_id, "runbook_step", doc, run.lease)
        if d.step is Step.NOTHING:
            return state
        state = _execute(run, d, state, view, stop)
        run.check_lease()
        if state in (S.RESOLVED, S.ESCALATED):
            return state
    why = f"the runbook did not settle after {MAX_STEPS} steps in one run: a person decides"
    return escalate(run, S(get_incident(run.incident_id)["state"]), why)


def _execute(run: IncidentRun, d: Decision, state: S, view: TimelineView, stop: KillSwitchDoc | None) -> S:
    if d.step is Step.ESCALATE:
        data: dict[str, object] = {"kill_switch": stop} if d.proposed is not None and stop else {}
        if view.plan is not None and view.plan.known_condition:  # the person owns it: lift what this run applied
            try:
                lift_mitigation(run.cluster_id, run.incident_id, d.reason, run.lease)
            except AutomationStopped as e:  # the person finds the mitigation still in force, and why
                record_event(run.incident_id, "automation_stopped", e.as_doc(), run.lease)
        return escalate(run, state, d.reason, data)
    if d.execution is Execution.RECORD:
        return _record_only(run, d, state, view)
    if d.execution is Execution.ASK and d.step is not Step.REPLACE_ASK_APPROVAL:
        return _ask_for_plan(run, d, state, view)
    return _STEPS[d.step](run, d, state, view)


# --- the steps ---------------------------------------------------------------------------------------------------


def _mitigate(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """The reversible part first (degraded policy, scheduled repairs paused); the assessment refines or lifts it."""
    if mitigation_on(run.incident_id) is None:
        mitigate(run.cluster_id, run.incident_id, d.reason, run.lease)
    return state


def _assess(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """Detect, then plan from what is seen down now and what the triggers and earlier looks saw. A node the
    detection finds down and not yet mitigated for goes on the timeline first: the next decision mitigates."""
    state = walk(run, state, S.ASSESSING, d)
    fresh = run.detected is None
    detected = run.detected or detect(run.cluster_id)
    run.detected = None
    known = {n.node for n in view.facts.nodes if not remedied(n, view.down_now)}
    new = sorted(a for a in (_address(run, n) for n in detected["down"]) if a and a not in known)
    if detected["down"] and fresh:
        record_event(run.incident_id, "observed", {"down": list(detected["down"]), "by": "detection"}, run.lease)
        if new and not view.facts.mitigated:
            run.detected = detected  # assessed right after the mitigation the next decision makes
            return state
    # Reported down: the nodes still owed a remedy (named by a trigger or seen down, and back or not) and the ones
    # seen down now; a node remedied already is not this assessment's business.
    reported = list(dict.fromkeys([*d.targets, *detected["down"]]))
    plan = assess(run.cluster_id, detected=detected, outage_started=run.outage_started, reported_down=reported)
    store_plan(run.incident_id, plan, run.lease)
    run.plan = plan
    run.plans.append(plan)
    _progress(run.incident_id)
    if run.slack is None:
        run.slack = slack_thread(run.cluster_id, run.incident_id, run.title, run.fields(), run.lease)
    return state


def _wait_for_heal(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """Until the nodes answer and no peer sees them down, or the runbook's heal deadline (counted from when each
    was first seen down): then the next decision replays their hints, or replaces or escalates a node not back."""
    state = walk(run, state, S.RECOVERING, d)
    until = d.until or datetime.now(UTC)
    up = wait_until_up(run.cluster_id, list(d.targets), max(1.0, (until - datetime.now(UTC)).total_seconds()))
    if up["up"]:
        record_event(run.incident_id, "healed", {"targets": list(d.targets), "waited_s": up["waited_s"]}, run.lease)
    return state


def _recover(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """Watch the nodes' hint replay (a repair when it stalls), or repair their ranges; then deliver the write
    queue. Without targets: every hint to every node (a monitored incident re-opened with nothing named)."""
    state = walk(run, state, S.RECOVERING, d)
    if not d.targets:
        every = sorted(set(run.addresses.values()))
        hints = drain_hints(run.cluster_id, every, lease=run.lease)
        record_event(run.incident_id, "hints_drained", hints, run.lease)
        out: RecoveryDoc = {"targets": [], "action": "reverify", "hints": hints, "steps": []}
        out["steps"] = [f"hints to every node {hints['state']} in {hints['elapsed_s']}s"]
        return _recovered(run, drain_and_compare(run.cluster_id, out), state)
    action = "repair" if d.step is Step.REPAIR else "wait_for_hints"
    base: PlanDoc = run.plan or {"action": action, "targets": []}
    sub: PlanDoc = {**base, "action": action, "targets": list(d.targets)}
    result = recover(run.cluster_id, run.incident_id, sub, heal_timeout_s=run.heal_timeout_s, lease=run.lease)
    if result.get("escalate"):
        run.blocked = result["escalate"]  # a repair that escalated, or a node gone again: a person decides
    return _recovered(run, result, state)


def _recovered(run: IncidentRun, result: RecoveryDoc, state: S) -> S:
    record_event(run.incident_id, "recovery_finished", {k: v for k, v in result.items() if k != "compare"}, run.lease)
    run.recovery = result
    run.steps += result.get("steps", [])
    return state


def _replace(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """A dead node past the heal timeout (or past gc_grace) is replaced only after a person approves."""
    state = walk(run, state, S.RECOVERING, d)
    plan: Mapping[str, Any] = run.plan or {}
    why = "wipe_and_replace" if plan.get("action") == "wipe_and_replace" else "node failed and did not come back"
    dead = list(d.targets)
    approval = run.asking(
        lambda: ask_approval(run.cluster_id, run.incident_id, dead, why, run.approval_timeout_s, run.lease)
    )
    return _replacement_answered(run, state, list(d.targets), approval)


def _replacement_answered(run: IncidentRun, state: S, dead: list[str], approval: Settled) -> S:
    record_event(run.incident_id, "approval_decided", approval.decision(), run.lease)
    if not approval.approved:
        expired = approval.approver == EXPIRED
        why = "approval expired" if expired else f"replacement rejected by {approval.approver}"
        run.blocked = f"{why}: {', '.join(dead)} not replaced"
        result: RecoveryDoc = {"escalate": run.blocked, "steps": []}
    else:
        result = replace_and_verify(run.cluster_id, run.incident_id, dead, approval, run.lease)
        if result.get("escalate"):
            run.blocked = result["escalate"]
    return _recovered(run, result, state)


def _verify(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """Prove every replica converged with the source of truth; a divergence is fixed and verified again."""

    if state is not S.MONITORING:
        state = walk(run, state, S.VERIFYING, d, _recovery_doc(run))
    since = _outage_seen(run, view)
    ver = verify(run.cluster_id, incident_id=run.incident_id, lease=run.lease, stage="initial", missed_since=since)
    run.verification = ver
    if not ver["converged"]:
        run.blocked = ver["escalate"]
    return state


def _outage_seen(run: IncidentRun, view: TimelineView) -> str | None:
    """When this run's outages were first seen (ISO 8601), for the outage-scoped proof; None for a full pass.

    Scoped only when a follow-up verification will read the whole table later (it catches what the proof cannot
    see): with no monitoring period the incident closes on this pass, so it must be the full one. The earliest of
    the run's outage start, the trigger's own start (an alert's startsAt, before it was confirmed) and every node's
    first sighting down on the timeline."""

    if run.follow_up_s <= 0 or not Settings().verification.scoped:
        return None
    seen: list[str | datetime] = [run.outage_started, episode_start(run.trigger, run.outage_started)]
    return min(map(_aware, [*seen, *(n.down_since for n in view.facts.nodes)])).isoformat()


def _aware(at: str | datetime) -> datetime:
    t = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _restore(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """The normal policy back and the repair pause lifted, only with a converged verification in hand."""
    passes = run.verification["passes"] if run.verification is not None else []
    evidence: Evidence = {
        "equal": True,
        "verification": passes,
        "why": d.reason,
    }  # the runbook's: nothing left unproven
    run.restored = dict(restore_normal(run.cluster_id, run.incident_id, evidence, run.lease))
    return state


def _monitor(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """Verified: monitored until the follow-up verification, which closes it."""

    passes = run.verification["passes"] if run.verification is not None else []
    data = {"verification": passes, **run.restored}
    state = walk(run, state, S.MONITORING, d, data)
    sched = schedule_follow_up(run.cluster_id, run.incident_id, run.follow_up_s, run.lease)
    slack_thread(run.cluster_id, run.incident_id, run.title, run.fields(), run.lease, status=S.MONITORING)
    when = f"follow-up verification at {sched['at']}" if sched["scheduled"] else "follow-up NOT scheduled"
    text = f"Recovered and verified: {'; '.join(run.steps)}; policy back to normal; {when}."
    slack_reply(run.cluster_id, run.incident_id, text, run.lease)
    _postmortem(run)
    return state


def _resolve(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    verified = run.verification is not None
    passes = {"verification": run.verification["passes"]} if run.verification is not None else {}
    data = {"reason": d.reason, **passes, **run.restored}
    state = walk(run, state, S.RESOLVED, d, data)
    if verified:
        slack_thread(run.cluster_id, run.incident_id, run.title, run.fields(), run.lease, status=S.RESOLVED)
        text = f"Recovered: {'; '.join(run.steps)}; verified; policy back to normal."
        slack_reply(run.cluster_id, run.incident_id, text, run.lease)
        _postmortem(run)
    return state


def _wait(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    return state


_STEPS = {
    Step.MITIGATE: _mitigate,
    Step.ASSESS: _assess,
    Step.WAIT_FOR_HEAL: _wait_for_heal,
    Step.WATCH_HINTS: _recover,
    Step.REPAIR: _recover,
    Step.REPLACE_ASK_APPROVAL: _replace,
    Step.VERIFY: _verify,
    Step.FIX_DIVERGENCE: _verify,  # the verify flow fixes what differs and verifies again
    Step.RESTORE_NORMAL: _restore,
    Step.SCHEDULE_FOLLOW_UP: _monitor,
    Step.RESOLVE: _resolve,
    Step.RETRY: _wait,  # an outside observer's step: this run is the acting one
}


# --- the automation level: record, or ask for the whole plan ------------------------------------------------------


def _proposal(run: IncidentRun, d: Decision) -> tuple[list[str], bool]:
    plan: Mapping[str, Any] = run.plan or {}
    reverify = d.step is Step.WATCH_HINTS and not d.targets
    return proposed_steps(str(plan.get("action", d.step)), plan.get("targets") or list(d.targets), reverify), reverify


def _record_only(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """observe: what would be done goes on the timeline and to a person; nothing is applied."""
    level = automation_level(run.cluster_id)
    steps, _ = _proposal(run, d)
    record_event(run.incident_id, "proposed", {"level": level, "steps": steps}, run.lease)
    return escalate(run, state, held_back(level, run.cluster_id, steps), {"level": level})


def _ask_for_plan(run: IncidentRun, d: Decision, state: S, view: TimelineView) -> S:
    """propose: the plan's side effects wait for one approval; the run suspends (the answer resumes it)."""
    steps, reverify = _proposal(run, d)
    down = sorted(view.down_now)
    approval = run.asking(
        lambda: ask_plan_approval(
            run.cluster_id, run.incident_id, run.plan or {}, down, steps, reverify, run.approval_timeout_s, run.lease
        )
    )
    return _plan_answered(run, state, approval, steps)


def _plan_answered(run: IncidentRun, state: S, approval: Settled, steps: list[str]) -> S:
    if approval.approved:
        return state  # the next decisions run the plan's steps (plan_approved)
    level = automation_level(run.cluster_id)
    return escalate(run, state, refusal(approval, steps), {"level": level})


def _answer_pending_approval(run: IncidentRun, state: S, events: list[EventView]) -> S | None:
    """A run resumed from its suspension takes the person's answer (asking again returns it); None when no
    question is open."""
    if (asked := open_request(events, PLAN)) is not None:
        plan: Mapping[str, Any] = run.plan or {}
        reverify = bool(asked.get("reverify"))
        steps = proposed_steps(str(plan.get("action", "")), plan.get("targets") or [], reverify)
        down = list(asked.get("down") or [])
        approval = run.asking(
            lambda: ask_plan_approval(
                run.cluster_id, run.incident_id, plan, down, steps, reverify, run.approval_timeout_s, run.lease
            )
        )
        return _plan_answered(run, state, approval, steps)
    if (asked := open_request(events, REPLACE)) is not None:
        dead = [str(n) for n in asked.get("nodes") or []]
        why = str(asked.get("reason") or "replacement")
        approval = run.asking(
            lambda: ask_approval(run.cluster_id, run.incident_id, dead, why, run.approval_timeout_s, run.lease)
        )
        return _replacement_answered(run, state, dead, approval)
    return None


# --- moving the incident ---------------------------------------------------------------------------------------------


def walk(run: IncidentRun, state: S, target: S, d: Decision, data: Mapping[str, object] | None = None) -> S:
    """Along the allowed transitions to the step's state, each with the decision's reason. Recovery under a
    mitigation in force passes through `mitigating`, which announces the mitigation in the incident's thread."""
    path = transitions_to(state, target)
    mitigation = mitigation_on(run.incident_id) if target is S.RECOVERING and state is S.ASSESSING else None
    if mitigation is not None:
        path = (S.MITIGATING, S.RECOVERING)
    for nxt in path:
        doc = {"reason": d.reason, "step": d.step.value, "decision_targets": list(d.targets), **(data or {})}
        _move(run.incident_id, state, nxt, run.lease, doc)
        state = nxt
        if nxt is S.MITIGATING and mitigation is not None:
            slack_thread(run.cluster_id, run.incident_id, run.title, run.fields(), run.lease, status=S.MITIGATING)
            slack_reply(
                run.cluster_id,
                run.incident_id,
                f"Mitigation: policy {mitigation['policy']} (non-critical reads at {mitigation['read_consistency']},"
                " critical reads from PostgreSQL, writes queued); scheduled repairs paused.",
                run.lease,
            )
    _progress(run.incident_id)
    return state


def escalate(run: IncidentRun, state: S, why: str, data: Mapping[str, object] | None = None) -> S:
    """To a person, wherever the run stands: the reason on the timeline and in the Slack thread, the post-mortem
    written (an escalated incident is as much a story to tell as a resolved one)."""
    _move(run.incident_id, state, S.ESCALATED, run.lease, {"reason": why, **(data or {})})
    slack_thread(run.cluster_id, run.incident_id, run.title, run.fields(), run.lease, status=S.ESCALATED)
    slack_reply(run.cluster_id, run.incident_id, f"Escalated: {why}", run.lease)
    _postmortem(run)
    return S.ESCALATED


def _probe(run: IncidentRun, view: TimelineView) -> bool:
    """The run's first, fast look (a client probe answers in under a second; a detection can take 10 s): nodes
    it cannot reach go on the timeline, so the first decision can mitigate before the assessment. True when it
    recorded any."""
    run.probed = True
    unreachable = [n for n, p in probe_nodes(run.cluster_id).items() if not p["ok"]]
    new = [n for n in unreachable if _address(run, n) not in view.down_now]
    if new:
        record_event(run.incident_id, "observed", {"down": unreachable, "by": "probe"}, run.lease)
    return bool(new)


def _address(run: IncidentRun, ref: str) -> str | None:
    return run.addresses.get(ref) or (ref if ref in run.addresses.values() else None)


def _recovery_doc(run: IncidentRun) -> dict[str, object]:
    if run.recovery is None:
        return {}
    doc: dict[str, object] = {"steps": run.recovery.get("steps", [])}
    if "compare" in run.recovery:
        doc["compare"] = run.recovery["compare"]
    return doc


def _progress(incident_id: str) -> None:
    """Moves the incident's progress artifact to the phases its timeline shows done."""

    _PROGRESS[incident_id] = incident_progress(incident_id, _PROGRESS.get(incident_id))


_PROGRESS: dict[str, str | None] = {}  # incident -> its progress artifact, within this process


def _postmortem(run: IncidentRun) -> None:
    write_postmortem(run.cluster_id, run.incident_id, run.lease)
    _progress(run.incident_id)
