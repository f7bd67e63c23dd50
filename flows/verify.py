"""Verification phase: per-replica convergence, a targeted fix of what differs, verification again; and the
follow-up verification that closes a monitored incident."""

from __future__ import annotations

import time
from typing import cast

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from cassandra_recovery.contracts import FollowUpResult, ReadLimits, VerificationReportDoc, VerifyDoc, VerifyPassDoc
from cassandra_recovery.controls.killswitch import AutomationStopped
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.incident_states import IncidentState as S
from cassandra_recovery.settings import Settings
from deployments import names
from flows.clusters import cluster_named
from tasks.incident import get_incident, release_lease, slack_reply, slack_thread, take_lease, transition
from tasks.postmortem import incident_progress, write_postmortem
from tasks.recovery import automation_stopped
from tasks.verification import defer_follow_up, fix_divergence, verify_table


def _brief(report: VerificationReportDoc, stage: str) -> VerifyPassDoc:
    keys = {k: len(v) for k, v in report["keys"].items()}
    scope = report.get("scope") or {}
    kind = "outage-scoped" if scope.get("scoped") else "full"
    brief: VerifyPassDoc = {"pass": stage, "verdict": report["verdict"], "rows_compared": report["rows_compared"]}
    brief |= {"keys": keys, "kind": kind}
    if scope.get("scoped"):
        brief["changed_keys"] = cast(int, scope["changed_keys"])  # a scoped plan counts them (verification/scoped.py)
    return brief


@flow(name=names.VERIFY, persist_result=True, result_serializer="json")
def verify(
    cluster_id: str | None = None,
    keyspace: str | None = None,
    table: str | None = None,
    fix: bool = True,
    incident_id: str | None = None,
    lease: Lease | None = None,
    stage: str = "initial",
    unproven_retries: int = 2,
    retry_after_s: float = 20.0,
    missed_since: str | None = None,
    limits: ReadLimits | None = None,
    max_fix_keys: int | None = None,
) -> VerifyDoc:
    """Converged, diverged or cannot verify; a divergence is fixed (keys in place, or a repair) and verified
    again when `fix`; `escalate` says why when the table is not proven converged in the end. `missed_since`
    (ISO 8601, when the outage was first seen): the outage-scoped proof, reading only the keys changed since.
    `limits` and `max_fix_keys`: this run's read settings and in-place fix ceiling, over settings'."""
    cluster_id = cluster_named(cluster_id)
    log = get_run_logger()
    first = verify_table(cluster_id, keyspace, table, stage, incident_id, lease, None, missed_since, limits)
    for _ in range(unproven_retries):
        if first["verdict"] != "cannot_verify" or first["down"]:
            break
        # Reads not proven to be a replica's own (a node just back is avoided by the dynamic snitch until its
        # latency samples recover): ask again a little later instead of calling it unverifiable at once.
        log.info("verification could not prove every read (%s); again in %.0fs", first["reasons"][:2], retry_after_s)
        time.sleep(retry_after_s)
        first = verify_table(cluster_id, keyspace, table, stage, incident_id, lease, None, missed_since, limits)
    out: VerifyDoc = {
        "converged": first["converged"],
        "verdict": first["verdict"],
        "passes": [_brief(first, stage)],
        "report": first,
    }
    stop = automation_stopped(cluster_id) if first["verdict"] == "diverged" and fix else None
    if stop:
        out["fix_skipped"] = f"automation stopped for {cluster_id} by {stop['set_by']} ({stop['reason']})"
    elif first["verdict"] == "diverged" and fix:
        key = f"verify-fix/{incident_id or flow_run.id}/{stage}"
        try:
            out["fix"] = fix_divergence(cluster_id, first, key, incident_id, lease, max_fix_keys)
        except AutomationStopped as e:  # set since the read above: the fix's fenced start refused it
            out["fix_skipped"] = str(e)
            return _unconverged(out)
        log.info("fixed by %s (%s); verifying again", out["fix"]["method"], out["fix"]["why"])
        second = verify_table(
            cluster_id, keyspace, table, "after_fix", incident_id, lease, out["fix"], missed_since, limits
        )
        out |= {"converged": second["converged"], "verdict": second["verdict"], "report": second}
        out["passes"].append(_brief(second, "after_fix"))
    return _unconverged(out)


def _unconverged(out: VerifyDoc) -> VerifyDoc:
    """`escalate` set, with what was found, when the table did not converge."""
    if not out["converged"]:
        rep = out["report"]
        what = "still diverged after the fix" if "fix" in out else out["verdict"].replace("_", " ")
        if "fix_skipped" in out:
            what += f" (no fix: {out['fix_skipped']})"
        out["escalate"] = f"{rep['keyspace']}.{rep['table']} {what}: " + "; ".join(rep["reasons"][:3])
    return out


def _missed_by_the_incident_pass(ver: VerifyDoc) -> str:
    """Why a follow-up that found differences must not close the incident even once they are fixed: the pass that
    verified it (usually the outage-scoped proof) did not see them, so a person looks at how they came."""
    first = ver["passes"][0]
    if first["verdict"] != "diverged":
        return ""
    keys = sum(first["keys"].values())
    fixed = "fixed and verified since" if ver["converged"] else "not fixed"
    return (
        f"the follow-up's full pass found {keys} differing key(s) that the incident's verification did not see "
        f"({fixed}): written by a path the outage-scoped proof cannot see, or a new divergence"
    )


@flow(name=names.FOLLOW_UP_VERIFICATION, persist_result=True, result_serializer="json")
def follow_up_verification(
    cluster_id: str | None = None, incident_id: str = "", keyspace: str | None = None, table: str | None = None
) -> FollowUpResult:
    """Closes a monitored incident when verification passes again after the monitoring period; escalates it
    otherwise. Anything but a monitored incident is left alone."""
    cluster_id = cluster_named(cluster_id)

    log = get_run_logger()
    state = get_incident(incident_id)["state"]
    if state != S.MONITORING:
        log.info("incident %s is %s, not monitored: nothing to follow up", incident_id, state)
        return {"incident_id": incident_id, "skipped": f"incident is {state}"}
    run_id = str(flow_run.id or "local")
    lease = take_lease(incident_id, f"flow-run/{run_id}", run_key=run_id)
    if lease is None:  # a run joined the incident (a new failure): follow up again later instead of failing
        after_s = Settings().verification.follow_up_retry_s
        deferred = defer_follow_up(cluster_id, incident_id, after_s, {"keyspace": keyspace, "table": table}, run_id)
        log.info("incident %s is held by another run: follow-up deferred (%s)", incident_id, deferred)
        return {"incident_id": incident_id, "deferred": deferred}
    try:
        ver = verify(cluster_id, keyspace, table, fix=True, incident_id=incident_id, lease=lease, stage="follow_up")
        title, fields = f"Cassandra incident on {cluster_id}", {"cluster": cluster_id, "follow-up": ver["verdict"]}
        missed = _missed_by_the_incident_pass(ver)
        if ver["converged"] and not missed:
            transition(incident_id, S.MONITORING, S.RESOLVED, lease, {"follow_up": ver["passes"]})
            slack_thread(cluster_id, incident_id, title, fields, lease, status=S.RESOLVED)
            new_state = S.RESOLVED
        else:
            reason = ver.get("escalate") or missed
            transition(incident_id, S.MONITORING, S.ESCALATED, lease, {"reason": reason, "follow_up": ver["passes"]})
            slack_thread(cluster_id, incident_id, title, fields, lease, status=S.ESCALATED)
            slack_reply(cluster_id, incident_id, f"Escalated after the follow-up verification: {reason}", lease)
            new_state = S.ESCALATED
        report = write_postmortem(cluster_id, incident_id, lease)
        incident_progress(incident_id)
        return {"incident_id": incident_id, "state": new_state, "verification": ver["passes"], "postmortem": report}
    finally:
        release_lease(lease)
