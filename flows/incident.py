"""The parent incident flow: open or join the cluster's incident, hold its lease, detect, assess, mitigate,
recover, verify and report. A resumed run continues from the incident's stored state and plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from cassandra_recovery.logic.approvals import PLAN
from cassandra_recovery.logic.automation import held_back, may_act, proposed_steps
from cassandra_recovery.logic.incident_states import IncidentState as S
from cassandra_recovery.logic.reported import episode_start, reported_down, was_monitored
from flows.assess import assess
from flows.detect import detect
from flows.proposal import ask_plan_approval, pending_request, refusal
from flows.recover import recover
from flows.replacement import EXPIRED, ask_approval, pending_replacement, replace_and_verify
from tasks.incident import (
    get_incident,
    incident_events,
    open_or_join,
    owed_now,
    release_lease,
    slack_reply,
    slack_thread,
    store_plan,
    take_lease,
    transition,
)
from tasks.observe import probe_nodes
from tasks.recovery import (
    automation_level,
    automation_stopped,
    lift_mitigation,
    mitigate,
    mitigation_on,
    record_event,
    renew_lease,
    restore_normal,
)

ACTING = ("wait_for_hints", "repair", "wipe_and_replace")
_PROGRESS: dict[str, str | None] = {}  # incident -> its progress artifact, within this process


def _progress(incident_id: str) -> None:
    """Moves the incident's progress artifact to the phases its timeline shows done."""
    from tasks.postmortem import incident_progress

    _PROGRESS[incident_id] = incident_progress(incident_id, _PROGRESS.get(incident_id))


PAST_ASSESSMENT = (S.MITIGATING, S.RECOVERING, S.VERIFYING)


def _closed(incident_id: str) -> bool:
    """Whether the incident a trigger names is resolved or escalated (an unknown one is not)."""
    from cassandra_recovery.incident.store import IncidentNotFound

    try:
        return get_incident(incident_id)["state"] in (S.RESOLVED, S.ESCALATED)
    except IncidentNotFound:
        return False


@flow(name="incident-response", persist_result=True, result_serializer="json")
def incident_response(
    cluster_id: str = "lab",
    trigger: dict[str, Any] | None = None,
    dry_run: bool = False,
    heal_timeout_s: float = 900.0,
    approval_timeout_s: float = 3600.0,
    follow_up_s: float | None = None,
) -> dict[str, Any]:
    """heal_timeout_s: how long recovery waits for a down node to come back before a dead one is proposed for
    replacement; approval_timeout_s: how long that replacement waits for a human before escalating;
    follow_up_s: when the follow-up verification runs (settings' verification.follow_up_s by default; 0 closes
    the incident right after the first passing verification)."""
    from prefect.exceptions import Abort, Pause

    from cassandra_recovery.incident.store import LeaseLost

    log = get_run_logger()
    if dry_run:  # plan and report without acting: no incident, no lease, no Slack
        plan = assess(cluster_id)
        return {"cluster": cluster_id, "dry_run": True, "plan": plan}
    run_id = str(flow_run.id or "local")
    actor = f"flow-run/{run_id}"
    named = str((trigger or {}).get("incident_id") or "")
    if named and _closed(named):
        # The receiver opened or joined `named` for this alert and it was closed before this run started: the
        # outage it reported was handled. A new failure is a new alert episode, which opens its own incident.
        log.info("incident %s named by the trigger is already closed; nothing to do", named)
        return {"cluster": cluster_id, "incident_id": named, "acting": False, "skipped": "incident already closed"}
    incident = open_or_join(cluster_id, trigger or {"source": "manual"}, actor)
    lease = take_lease(incident["id"], actor, run_key=run_id)
    if lease is None:
        log.info("incident %s is handled by another run; this trigger joined it", incident["id"])
        return {"cluster": cluster_id, "incident_id": incident["id"], "acting": False}
    title = f"Cassandra incident on {cluster_id}"
    waiting = False
    try:
        current = get_incident(incident["id"])
        state, recovery = current["state"], None
        outage_started, seen_down, reopened = incident["opened_at"], [], False
        detected: dict[str, Any] | None = None
        if state == S.MONITORING:
            # Recovered and verified, waiting for the follow-up; a new trigger means something happened since, even
            # if nothing is down by now: re-assess, watch what was seen down, drain the queue and verify again.
            now = detected = detect(cluster_id)
            seen_down, reopened = list(now["down"]), True
            outage_started = episode_start(trigger, default=_utcnow())
            why = {"reason": "a new trigger on the monitored incident: re-assess and verify", "down": seen_down}
            transition(incident["id"], S.MONITORING, S.ASSESSING, lease, why)
            state = S.ASSESSING
        proposal = pending_request(incident["id"], PLAN) if state == S.ASSESSING else None
        if state in PAST_ASSESSMENT and current["plan"]:
            # a resumed run: the plan was made and acted on; observing again now would forget the outage
            log.info("incident %s resumed in state %s with its stored plan", incident["id"], current["state"])
            plan, down, slack = current["plan"], list(current["plan"]["targets"]), None
        elif proposal is not None and current["plan"]:
            # resumed with a person's answer to the proposed plan: decide on the plan they were shown
            plan, down, slack = current["plan"], list(proposal.get("down") or []), None
            reopened = bool(proposal.get("reverify"))
        else:
            if state == S.DETECTED:
                transition(incident["id"], S.DETECTED, S.ASSESSING, lease, {"by": actor})
                state = S.ASSESSING
            if detected is None:  # a client probe answers in under a second; a full detection may take 10 s or more
                unreachable = [n for n, p in probe_nodes(cluster_id).items() if not p["ok"]]
                if unreachable:
                    _mitigate_first(cluster_id, incident["id"], unreachable, lease)
            detected = detected or detect(cluster_id)
            if detected["down"]:
                _mitigate_first(cluster_id, incident["id"], detected["down"], lease)
            # Seen down by this run's own detections count as reported: a node back by the time the assessment
            # looks again still missed writes.
            events = incident_events(incident["id"])
            # A run resumed after it re-opened a monitored incident owes the same re-verification.
            reopened = reopened or was_monitored(events)
            reported = reported_down(current.get("trigger"), events)
            reported = list(dict.fromkeys([*reported, *seen_down, *detected["down"]]))
            # A node a trigger reported (the detector or an alert confirmed it) and nothing remedied yet is mitigated
            # for too, even if it answers again by now: its missed writes are still being replayed (the runbook).
            if owed := owed_now(cluster_id, incident["id"]):
                _mitigate_first(cluster_id, incident["id"], owed, lease)
            plan = assess(cluster_id, detected=detected, outage_started=outage_started, reported_down=reported)
            store_plan(incident["id"], plan, lease)
            _progress(incident["id"])
            down = detected["down"]
        fields = {
            "cluster": cluster_id,
            "plan": plan["action"],
            "down": ", ".join(down) or "none",
            "reasons": "; ".join(plan.get("reasons", []))[:1900] or "-",
        }
        if state not in PAST_ASSESSMENT:
            slack = slack_thread(cluster_id, incident["id"], title, fields, lease)
        level = automation_level(cluster_id)
        reverify = plan["action"] == "no_action" and not down and reopened
        acts = state == S.ASSESSING and (plan["action"] in ACTING or reverify)
        stop = automation_stopped(cluster_id) if acts else None
        held = None
        if acts and not may_act(level):
            steps = proposed_steps(plan["action"], plan["targets"], reverify)
            if level == "propose":
                timeout = approval_timeout_s
                approval = ask_plan_approval(cluster_id, incident["id"], plan, down, steps, reverify, timeout, lease)
                held = None if approval.approved else refusal(approval, steps)
            else:
                held = held_back(level, cluster_id, steps)
                record_event(incident["id"], "proposed", {"level": level, "steps": steps}, lease)
        if held:
            state = _escalate(cluster_id, incident["id"], S.ASSESSING, held, fields, lease, {"level": level})
        elif acts and stop:
            what = "re-verification" if reverify else plan["action"]
            stopped = f"automation stopped for {cluster_id} by {stop['set_by']} ({stop['reason']}): {what} not run"
            state = _escalate(cluster_id, incident["id"], S.ASSESSING, stopped, fields, lease, {"kill_switch": stop})
        elif reverify and state == S.ASSESSING:
            state, recovery, lease = _reverify(cluster_id, incident["id"], fields, lease, follow_up_s)
        elif plan["action"] == "no_action" and not down and state == S.ASSESSING:
            transition(incident["id"], S.ASSESSING, S.RESOLVED, lease, {"reason": "no node down"})
            state = S.RESOLVED
        elif plan["action"] == "no_action" and state == S.ASSESSING:  # nodes down under a known condition
            owned = "; ".join(plan.get("reasons", [])[:2]) + ": a person owns the recovery"
            lift_mitigation(cluster_id, incident["id"], owned, lease)
            state = _escalate(cluster_id, incident["id"], S.ASSESSING, owned, fields, lease)
        elif plan["action"] == "escalate" and state == S.ASSESSING:
            reasons = list(plan.get("reasons", []))
            because = "; ".join(reasons) or "the assessment escalates"
            state = _escalate(cluster_id, incident["id"], S.ASSESSING, because, fields, lease, {"reasons": reasons})
        elif plan["action"] in ACTING:
            timeouts = (heal_timeout_s, approval_timeout_s)
            state, recovery, lease = _mitigate_and_recover(
                cluster_id, incident["id"], plan, fields, lease, timeouts, follow_up_s
            )
        return {
            "cluster": cluster_id,
            "incident_id": incident["id"],
            "acting": True,
            "state": state,
            "created": incident["created"],
            "plan": plan,
            "slack": slack,
            "recovery": recovery,
            "fencing_token": lease.token,
        }
    except Pause:
        waiting = True  # suspended for an approval: the lease stays ours until the run resumes
        raise
    except LeaseLost as e:  # StaleFencingToken too: another attempt of this incident holds it now
        # Superseded (this process was frozen or partitioned and a retry took over): stop without touching
        # the incident or the flow run's state; Abort makes Prefect's engine exit quietly (code 0).
        waiting = True
        log.warning("superseded by a newer attempt, stopping without acting: %s", e)
        raise Abort(f"superseded: {e}") from e
    finally:
        if not waiting:
            release_lease(lease)


def _mitigate_and_recover(
    cluster_id: str,
    incident_id: str,
    plan: dict[str, Any],
    fields: dict[str, str],
    lease: Any,
    timeouts: tuple[float, float] = (900.0, 3600.0),
    follow_up_s: float | None = None,
) -> tuple[str, dict[str, Any] | None, Any]:
    """assessing -> mitigating -> recovering -> verifying -> resolved (or escalated with the reason); each step
    starts from the incident's current state, so a resumed run picks up where the last one stopped."""
    title = f"Cassandra incident on {cluster_id}"
    state = get_incident(incident_id)["state"]
    if state == S.ASSESSING:
        transition(incident_id, S.ASSESSING, S.MITIGATING, lease, {"plan": plan["action"]})
        state = S.MITIGATING
    if state == S.MITIGATING:
        reason = f"{plan['action']} for {', '.join(plan['targets'])}"
        mitigation = mitigation_on(incident_id) or mitigate(cluster_id, incident_id, reason, lease)
        slack_thread(cluster_id, incident_id, title, fields, lease, status=S.MITIGATING)
        slack_reply(
            cluster_id,
            incident_id,
            f"Mitigation: policy {mitigation['policy']} (non-critical reads at {mitigation['read_consistency']},"
            " critical reads from PostgreSQL, writes queued); scheduled repairs paused.",
            lease,
        )
        transition(incident_id, S.MITIGATING, S.RECOVERING, lease, {})
        _progress(incident_id)
        state = S.RECOVERING
    result: dict[str, Any] | None = None
    if state == S.RECOVERING:
        pending = pending_replacement(incident_id)
        dead: list[str] = []
        if pending is not None:  # resumed after the approval request: do not wait for the dead node again
            dead = list(pending["nodes"])
        elif plan["action"] == "wipe_and_replace":
            dead = list(plan["targets"])
        else:
            lease = renew_lease(lease)
            result = recover(cluster_id, incident_id, plan, heal_timeout_s=timeouts[0], lease=lease)
            lease = renew_lease(lease)
            record_event(incident_id, "recovery_finished", {k: v for k, v in result.items() if k != "compare"}, lease)
            dead = _replaceable(plan, result)
        if dead:
            why = plan["action"] if plan["action"] == "wipe_and_replace" else "node failed and did not come back"
            approval = ask_approval(cluster_id, incident_id, dead, why, timeouts[1], lease)
            decision = {"approved": approval.approved, "approver": approval.approver, "note": approval.note}
            record_event(incident_id, "approval_decided", decision, lease)
            if not approval.approved:
                expired = approval.approver == EXPIRED
                why = "approval expired" if expired else f"replacement rejected by {approval.approver}"
                result = {"escalate": f"{why}: {', '.join(dead)} not replaced", "steps": []}
            else:
                result = replace_and_verify(cluster_id, incident_id, dead, approval, lease)
            record_event(incident_id, "recovery_finished", {k: v for k, v in result.items() if k != "compare"}, lease)
        assert result is not None  # noqa: S101 - recover() or the replacement ran
        if result.get("escalate"):
            return _escalate(cluster_id, incident_id, S.RECOVERING, result["escalate"], fields, lease), result, lease
        transition(
            incident_id, S.RECOVERING, S.VERIFYING, lease, {"steps": result["steps"], "compare": result["compare"]}
        )
        _progress(incident_id)
        state = S.VERIFYING
    if state == S.VERIFYING:
        state, lease = _verify_and_close(cluster_id, incident_id, result, fields, lease, follow_up_s)
    return state, result, lease


def _verify_and_close(
    cluster_id: str,
    incident_id: str,
    result: dict[str, Any] | None,
    fields: dict[str, str],
    lease: Any,
    follow_up_s: float | None,
) -> tuple[str, Any]:
    """verifying -> monitoring (a follow-up verification scheduled) or resolved, with the normal policy back;
    escalated when the data is not proven converged, even after a targeted fix."""
    from cassandra_recovery.settings import Settings
    from flows.verify import verify
    from tasks.postmortem import write_postmortem
    from tasks.verification import schedule_follow_up

    title = f"Cassandra incident on {cluster_id}"
    for _ in range(REPLAY_ROUNDS):
        if owed := owed_now(cluster_id, incident_id):  # seen down again since its replay (or never replayed)
            result, lease = _replay_again(cluster_id, incident_id, owed, lease)
            if result.get("escalate"):
                return _escalate(cluster_id, incident_id, S.RECOVERING, result["escalate"], fields, lease), lease
            continue
        ver = verify(cluster_id, incident_id=incident_id, lease=lease, stage="initial")
        lease = renew_lease(lease)
        if not ver["converged"]:
            return _escalate(cluster_id, incident_id, S.VERIFYING, ver["escalate"], fields, lease), lease
        if not owed_now(cluster_id, incident_id):  # nothing seen down while it verified either
            break
    else:
        why = f"nodes seen down again after {REPLAY_ROUNDS} rounds of hint replay and verification: a person decides"
        return _escalate(cluster_id, incident_id, S.VERIFYING, why, fields, lease), lease
    evidence = {"equal": True, "verification": ver["passes"]}
    restored = restore_normal(cluster_id, incident_id, evidence, lease)
    steps = "; ".join((result or {}).get("steps", []))
    if follow_up_s is None:
        follow_up_s = Settings().verification.follow_up_s
    if follow_up_s > 0:
        transition(incident_id, S.VERIFYING, S.MONITORING, lease, {"verification": ver["passes"], **restored})
        sched = schedule_follow_up(cluster_id, incident_id, follow_up_s, lease)
        slack_thread(cluster_id, incident_id, title, fields, lease, status=S.MONITORING)
        when = f"follow-up verification at {sched['at']}" if sched["scheduled"] else "follow-up NOT scheduled"
        slack_reply(cluster_id, incident_id, f"Recovered and verified: {steps}; policy back to normal; {when}.", lease)
        state = S.MONITORING
    else:
        transition(incident_id, S.VERIFYING, S.RESOLVED, lease, {"verification": ver["passes"], **restored})
        slack_thread(cluster_id, incident_id, title, fields, lease, status=S.RESOLVED)
        slack_reply(cluster_id, incident_id, f"Recovered: {steps}; verified; policy back to normal.", lease)
        state = S.RESOLVED
    write_postmortem(cluster_id, incident_id, lease)
    _progress(incident_id)
    return state, lease


def _mitigate_first(cluster_id: str, incident_id: str, down: list[str], lease: Any) -> None:
    """The reversible part of mitigation (degraded policy, scheduled repairs paused) as soon as this run sees a
    node down, before the assessment (which may wait for unsettled evidence); the assessment then keeps it for
    the recovery, or lifts it with its reason. Never with the kill switch set: that run escalates instead."""
    if not may_act(automation_level(cluster_id)) or mitigation_on(incident_id) or automation_stopped(cluster_id):
        return
    mitigate(cluster_id, incident_id, f"seen down: {', '.join(down)}: reversible mitigation first", lease)


def _reverify(
    cluster_id: str, incident_id: str, fields: dict[str, str], lease: Any, follow_up_s: float | None
) -> tuple[str, dict[str, Any], Any]:
    """A monitored incident re-triggered with nothing down now: whatever happened since the last verification
    is over, but its writes may not be everywhere. Every hint delivered (to any node), the write queue drained,
    then the same verification and close as after a recovery."""
    from cassandra_recovery.settings import Settings
    from flows.recover import drain_and_compare
    from tasks.recovery import drain_hints

    every = [n.address for n in Settings().cluster(cluster_id).nodes]
    transition(incident_id, S.ASSESSING, S.RECOVERING, lease, {"reason": "re-verify: nothing down now"})
    hints = drain_hints(cluster_id, every)
    record_event(incident_id, "hints_drained", hints, lease)
    out: dict[str, Any] = {"targets": [], "action": "reverify", "hints": hints}
    out["steps"] = [f"hints to every node {hints['state']} in {hints['elapsed_s']}s"]
    out = drain_and_compare(cluster_id, out)
    record_event(incident_id, "recovery_finished", {k: v for k, v in out.items() if k != "compare"}, lease)
    transition(incident_id, S.RECOVERING, S.VERIFYING, lease, {"steps": out["steps"], "compare": out["compare"]})
    _progress(incident_id)
    state, lease = _verify_and_close(cluster_id, incident_id, out, fields, lease, follow_up_s)
    return state, out, lease


def _utcnow() -> str:
    return datetime.now(UTC).isoformat()


REPLAY_ROUNDS = 3  # replay-and-verify rounds before a node that keeps being seen down goes to a person


def _replay_again(cluster_id: str, incident_id: str, owed: list[str], lease: Any) -> tuple[dict[str, Any], Any]:
    """verifying -> recovering -> verifying: the nodes seen down since their last replay (or repair) are a new
    failure, assessed like the first (dead, hung or partitioned; hints or a repair), then recovered the same way
    (wait for them, hints, repair if hints stall, the write queue), as the runbook decides."""
    why = f"seen down after their hint replay: {', '.join(owed)}: re-assess, replay and verify again"
    transition(incident_id, S.VERIFYING, S.RECOVERING, lease, {"reason": why, "owed": owed})
    lease = renew_lease(lease)
    plan = assess(cluster_id, reported_down=owed)
    store_plan(incident_id, plan, lease)
    if plan["action"] not in REPLAYABLE:  # escalate, or a replacement: not for a second round of the automation
        reasons = "; ".join(plan.get("reasons", [])[:3])
        return {"escalate": f"{plan['action']} for nodes seen down again ({', '.join(owed)}): {reasons}"}, lease
    if plan["action"] == "no_action":  # back by now and nothing else down: their hints still owe a replay
        plan = {**plan, "action": "wait_for_hints", "targets": owed}
    result = recover(cluster_id, incident_id, plan, lease=lease)
    lease = renew_lease(lease)
    record_event(incident_id, "recovery_finished", {k: v for k, v in result.items() if k != "compare"}, lease)
    if not result.get("escalate"):
        transition(incident_id, S.RECOVERING, S.VERIFYING, lease, {"steps": result["steps"]})
    return result, lease


REPLAYABLE = ("wait_for_hints", "repair", "no_action")


def _escalate(
    cluster_id: str,
    incident_id: str,
    state: str,
    why: str,
    fields: dict[str, str],
    lease: Any,
    data: dict[str, Any] | None = None,
) -> str:
    """To a person, wherever the run stands: the reason on the timeline and in the Slack thread, the post-mortem
    written (an escalated incident is as much a story to tell as a resolved one)."""
    from tasks.postmortem import write_postmortem

    transition(incident_id, state, S.ESCALATED, lease, {"reason": why, **(data or {})})
    slack_thread(cluster_id, incident_id, f"Cassandra incident on {cluster_id}", fields, lease, status=S.ESCALATED)
    slack_reply(cluster_id, incident_id, f"Escalated: {why}", lease)
    write_postmortem(cluster_id, incident_id, lease)
    return S.ESCALATED


def _replaceable(plan: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Nodes that did not come back and whose failure was a dead process (never a hung or partitioned one)."""
    kinds = {c["node"]: c["kind"] for c in plan.get("classifications", [])}
    return [n for n in result.get("not_back", []) if kinds.get(n) == "node_failure"]
