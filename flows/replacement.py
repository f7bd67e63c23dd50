"""Node replacement behind a human approval, run inside the top-level incident flow (Prefect refuses to
suspend a subflow). Suspending frees the process; resuming (a Slack button through the receiver, or the Prefect
UI's approval form; see approval_answer.py) restarts the incident run from the top, which comes back here
through the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import get_run_logger
from prefect.runtime import flow_run

from cassandra_recovery.contracts import RecoveryDoc, ReplacementDoc
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.approvals import REPLACE, open_request
from cassandra_recovery.logic.slack_approvals import Settled
from flows.approval_answer import EXPIRED, ReplacementApproval, how_to_answer, request_approval, wait_for_answer
from flows.recover import drain_and_compare, repair
from tasks.incident import incident_events
from tasks.recovery import renew_lease, replace_node

__all__ = ["EXPIRED", "ReplacementApproval", "ask_approval", "pending_replacement", "replace_and_verify"]


def pending_replacement(incident_id: str) -> dict[str, object] | None:
    """The replacement request this incident is waiting on (a run resumed after suspension), if any."""
    return open_request(incident_events(incident_id), REPLACE)


def ask_approval(
    cluster_id: str, incident_id: str, dead: list[str], reason: str, timeout_s: float, lease: Lease
) -> Settled:
    """Record the request (deadline included) once, then suspend until a person (or the expiry) answers."""
    if pending_replacement(incident_id) is None:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
        data = {"action": "replace", "nodes": dead, "reason": reason, "deadline": deadline.isoformat()}
        text = f"Approval needed: replace {', '.join(dead)} ({reason}). {how_to_answer(deadline)}"
        request_approval(cluster_id, incident_id, {**data, "flow_run_id": str(flow_run.id)}, text, lease)
    renew_lease(lease, ttl_s=timeout_s + 900)  # the lease outlives the wait: no rival run takes the incident
    get_run_logger().info("waiting for approval to replace %s (up to %.0fs)", dead, timeout_s)
    return wait_for_answer(cluster_id, incident_id, f"replace-{incident_id}", lease)


def replace_and_verify(
    cluster_id: str, incident_id: str, dead: list[str], approval: Settled, lease: Lease
) -> RecoveryDoc:
    """Replace each dead node, repair what the new nodes replicate, drain the queue, compare."""
    replaced: list[ReplacementDoc] = []
    out: RecoveryDoc = {"replaced": replaced, "steps": []}
    for address in dead:
        done = replace_node(cluster_id, incident_id, address, approval.approver, lease)
        replaced.append(done)
        out["steps"].append(f"{done['dead_address']} replaced by {done['new_address']} in {done['elapsed_s']}s")
    new = [r["new_address"] for r in replaced]
    rep = repair(cluster_id, run_key=f"incident/{incident_id}/after-replacement", targets=new)
    out["repair"] = rep
    out["steps"].append(f"repair after bootstrap: {rep['segments']} segment(s), escalated={rep['escalated']}")
    if rep["escalated"]:
        out["escalate"] = "; ".join(rep["reasons"]) or "repair after bootstrap escalated"
        return out
    return drain_and_compare(cluster_id, out)
