"""Recovery phase: wait for the targets to return, drain hints (repair when they cannot be trusted or stall),
deliver the degraded-mode write queue, and compare the cache with the source of truth."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from cassandra_recovery.contracts import PlanDoc, RecoveryDoc, RepairReportDoc, ScopeEntry
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.tokens import MAX_TOKEN, MIN_TOKEN
from deployments import names
from flows.clusters import cluster_named
from flows.queue import drain_write_queue
from tasks.queue import compare_with_source
from tasks.recovery import automation_stopped, drain_hints, plan_repair, record_event, run_repair, wait_until_up


class TokenRangeParam(BaseModel):
    """A token range to repair, as nodetool takes it: start exclusive, end inclusive (may wrap)."""

    start: int = Field(ge=MIN_TOKEN, le=MAX_TOKEN, description="exclusive")
    end: int = Field(ge=MIN_TOKEN, le=MAX_TOKEN, description="inclusive")


@flow(name=names.REPAIR, persist_result=True, result_serializer="json")
def repair(
    cluster_id: str | None = None,
    run_key: str | None = None,
    targets: list[str] | None = None,
    keyspaces: list[str] | None = None,
    kind: str = "full",
    segments_per_range: int = 1,
    plan_scope: list[ScopeEntry] | None = None,
    segment_timeout_s: float = 600.0,
    max_attempts: int = 3,
    inflight_wait_s: float = 300.0,
    token_range: TokenRangeParam | None = None,
    lease: Lease | None = None,
) -> RepairReportDoc:
    """Segmented, checkpointed repair of the ranges the targets replicate (all ranges without targets), or of
    one token range (`token_range`) cut at the ring's replica sets.

    The same run_key resumes a crashed run; without one, this flow run's id is the key. An incident's repair
    carries its lease: the repair stops at its next write once another run has taken the incident over."""
    cluster_id = cluster_named(cluster_id)

    if kind not in ("full", "incremental"):
        raise ValueError(f"kind must be full or incremental, got {kind!r}")
    log = get_run_logger()
    if stop := automation_stopped(cluster_id):
        why = f"automation stopped for {cluster_id} by {stop['set_by']} ({stop['reason']}): no repair started"
        log.warning(why)
        return {"segments": 0, "ran": 0, "reconciled": 0, "already_done": 0, "escalated": True, "reasons": [why]}
    key = run_key or f"flow-run/{flow_run.id}"
    tr = None if token_range is None else (token_range.start, token_range.end)
    segments = plan_repair(cluster_id, targets or [], keyspaces, plan_scope, segments_per_range, tr)
    log.info("repair %s: %d %s segment(s) for %s", key, len(segments), kind, targets or "the whole ring")
    report = run_repair(cluster_id, key, segments, kind, segment_timeout_s, max_attempts, inflight_wait_s, lease)
    log.info(
        "repair %s: %d ran, %d reconciled from Cassandra, %d already done, escalated=%s",
        key,
        report["ran"],
        report["reconciled"],
        report["already_done"],
        report["escalated"],
    )
    return report


@flow(name="recover", persist_result=True, result_serializer="json")
def recover(
    cluster_id: str,
    incident_id: str,
    plan: PlanDoc,
    heal_timeout_s: float = 900.0,
    hint_quiet_s: float = 25.0,
    hint_stall_s: float = 120.0,
    segments_per_range: int = 1,
    lease: Lease | None = None,
) -> RecoveryDoc:
    """What ran and why; `escalate` set with the reason when recovery cannot finish on its own. With the
    incident's lease, the timeline events are fenced: a superseded run is stopped at the first one."""
    log = get_run_logger()
    targets = list(plan["targets"])
    out: RecoveryDoc = {"targets": targets, "action": plan["action"], "steps": []}
    up = wait_until_up(cluster_id, targets, heal_timeout_s)
    out["heal"] = up
    if up["up"]:
        record_event(incident_id, "healed", {"targets": targets, "waited_s": up["waited_s"]}, lease)
    else:
        out["not_back"] = up["still_down"]  # the parent decides: replacement (behind approval) or escalation
        out["escalate"] = f"{up['still_down']} not back within {heal_timeout_s:.0f}s"
        return out
    needs_repair = plan["action"] == "repair"
    if plan["action"] == "wait_for_hints":
        hints = drain_hints(cluster_id, targets, hint_quiet_s, hint_stall_s, lease=lease)
        out["hints"] = hints
        record_event(incident_id, "hints_drained", hints, lease)
        out["steps"].append(f"hints {hints['state']} in {hints['elapsed_s']}s")
        if hints["state"] != "drained":
            log.warning("hint delivery %s (%s): repairing instead", hints["state"], hints["reason"])
            needs_repair = True
    if needs_repair:
        rep = repair(
            cluster_id,
            run_key=f"incident/{incident_id}",
            targets=targets,
            plan_scope=plan.get("scope") or None,
            segments_per_range=segments_per_range,
            lease=lease,
        )
        out["repair"] = rep
        record_event(incident_id, "repaired", {**rep, "targets": targets}, lease)
        out["steps"].append(f"repair {rep['segments']} segment(s), escalated={rep['escalated']}")
        if rep["escalated"]:
            out["escalate"] = "; ".join(rep["reasons"]) or "repair escalated"
            return out
    return drain_and_compare(cluster_id, out)


def drain_and_compare(cluster_id: str, out: RecoveryDoc) -> RecoveryDoc:
    """The tail of every recovery: deliver the write queue, then compare the cache with the source of truth
    (at the read consistency level; the verification phase then proves every replica's copy)."""
    queue = drain_write_queue(cluster_id)
    out["queue"] = {k: queue[k] for k in ("queued", "dead", "drained")}
    out.setdefault("steps", []).append(f"write queue drained ({queue['run']['delivered']} delivered)")
    cmp = compare_with_source(cluster_id)
    out["compare"] = cmp
    out["steps"].append(f"compare equal={cmp['equal']}")
    # A difference is not escalated here: the verification phase proves each replica and fixes what it can.
    return out
