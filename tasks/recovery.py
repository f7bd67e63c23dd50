"""Thin tasks of the mitigation and recovery phases: identifiers and values in, plain dicts out.

Every side effect on shared state is preceded by a fenced timeline event: a run whose lease was taken over
(a frozen or stale holder) is refused there (StaleFencingToken) and changes nothing.
"""

from __future__ import annotations

import time
from typing import cast

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.contracts import (
    Evidence,
    HealDoc,
    HintDrainDoc,
    KillSwitchDoc,
    MitigationDoc,
    PolicyChangeDoc,
    RepairReportDoc,
    ReplacementDoc,
    ScopeEntry,
    SegmentDoc,
)
from cassandra_recovery.degraded.policy import Mode
from cassandra_recovery.detection.observe import probe_all, status_views
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.mitigation_state import mitigation_in_force
from cassandra_recovery.logic.segments import Segment, clip, plan_segments
from cassandra_recovery.mitigation.apply import apply_mitigation, give_back, give_back_reaper
from cassandra_recovery.recovery.hints import watch_drain
from cassandra_recovery.recovery.repair import EngineConfig, RepairEngine
from cassandra_recovery.recovery.scope import current_scope, scope_from_plan
from cassandra_recovery.settings import ClusterConfig, Settings
from cassandra_recovery.storage.facade import process_storage
from cassandra_recovery.wiring import process_cql, provisioner_for
from tasks.incident import EventData, with_level
from tasks.pg_retry import PG_RETRIES


def _event(incident_id: str, kind: str, data: EventData, lease: Lease | None) -> None:
    incidents = process_storage().incidents
    data = with_level(incidents.get(incident_id).cluster_id, data)
    incidents.append_event(incident_id, kind, lease.holder if lease else "pipeline", data, lease)


def segment_doc(s: Segment) -> SegmentDoc:
    return {
        "keyspace": s.keyspace,
        "start": s.start,
        "end": s.end,
        "replicas": list(s.replicas),
        "coordinator": s.coordinator,
    }


def segment_of(d: SegmentDoc) -> Segment:
    return Segment(d["keyspace"], int(d["start"]), int(d["end"]), tuple(d["replicas"]), d["coordinator"])


@task(name="renew-incident-lease", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def renew_lease(lease: Lease, ttl_s: float = 1800.0) -> Lease:
    """LeaseLost when another run took the incident over: this run must stop acting."""
    return process_storage().incidents.renew_lease(lease, ttl_s)


@task(name="record-event", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def record_event(incident_id: str, kind: str, data: EventData, lease: Lease | None) -> None:
    _event(incident_id, kind, data, lease)


@task(name="mitigate", **PG_RETRIES, persist_result=True, result_serializer="json")
def mitigate(cluster_id: str, incident_id: str, reason: str, lease: Lease) -> MitigationDoc:
    """Degraded policy (critical reads from PostgreSQL, others at ONE) and scheduled repairs paused."""
    return apply_mitigation(process_storage(), cluster_id, incident_id, reason, lease.holder, lease)


@task(name="automation-level", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def automation_level(cluster_id: str) -> str:
    """How much the automation may do on the cluster (settings: the cluster's `automation`)."""
    return Settings().cluster(cluster_id).automation


@task(name="mitigation-in-force", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def mitigation_on(incident_id: str) -> MitigationDoc | None:
    """The mitigation this incident applied and nothing has lifted yet (its `mitigated` data), or None."""
    events = process_storage().incidents.events(incident_id)
    doc = mitigation_in_force({"kind": e.kind, "data": e.data} for e in events)
    return cast(MitigationDoc | None, doc)  # a `mitigated` event's data, written by mitigate (apply_mitigation)


@task(name="lift-mitigation", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def lift_mitigation(cluster_id: str, incident_id: str, reason: str, lease: Lease) -> PolicyChangeDoc | None:
    """The assessment decided the incident is not the automation's to act on: the policy and the repair pause
    this incident applied are lifted, with the reason. None when it had applied none."""
    if mitigation_on.fn(incident_id) is None:
        return None
    doc = give_back(process_storage(), cluster_id, incident_id, reason, lease)
    _event(incident_id, "mitigation_lifted", doc, lease)
    return doc


@task(name="restore-normal", **PG_RETRIES, persist_result=True, result_serializer="json")
def restore_normal(cluster_id: str, incident_id: str, evidence: Evidence, lease: Lease) -> PolicyChangeDoc:
    """Normal policy back and the repair pause lifted, only with verification evidence in hand."""
    if not evidence.get("equal"):
        raise ValueError(f"refusing to restore the normal policy without a passing comparison: {evidence}")
    _event(incident_id, "restore_started", {"evidence": evidence}, lease)
    storage = process_storage()
    fence, why = storage.incidents.fence(lease), f"verified after incident {incident_id}"
    policy = storage.policy.set(cluster_id, Mode.NORMAL, why, lease.holder, fence=fence)
    lifted = storage.pauses.resume(cluster_id, incident_id, fence)
    doc: PolicyChangeDoc = {"policy": policy.mode.value, "repairs_resumed": lifted}
    if (reaper := give_back_reaper(storage, cluster_id, incident_id, lease)) is not None:
        doc["reaper"] = reaper  # what this incident paused in Reaper, resumed
    _event(incident_id, "policy_restored", doc, lease)
    return doc


@task(name="wait-until-up", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def wait_until_up(cluster_id: str, targets: list[str], timeout_s: float = 900.0, poll_s: float = 2.0) -> HealDoc:
    """Until every target answers the client and no node that answers sees a target down (the partition healed,
    the node is back), or the timeout. A split leaves every node answering the client: gossip tells."""
    log = get_run_logger()
    cluster = Settings().cluster(cluster_id)
    t0 = time.monotonic()
    while True:
        probes = probe_all(cluster, timeout_s=1.0)
        down = [n.address for n in cluster.nodes if n.address in targets and not probes[n.name].ok]
        if not down:
            down = seen_down(cluster, [n.name for n in cluster.nodes if probes[n.name].ok], targets)
        waited = time.monotonic() - t0
        if not down:
            log.info("targets %s answer again and are seen up after %.0fs", targets, waited)
            return {"up": True, "waited_s": round(waited, 1)}
        if waited > timeout_s:
            return {"up": False, "waited_s": round(waited, 1), "still_down": down}
        time.sleep(poll_s)


def seen_down(cluster: ClusterConfig, observers: list[str], targets: list[str]) -> list[str]:
    """Targets some observer's own `nodetool status` shows down (an observer that cannot answer counts as not
    having seen the heal yet: all targets)."""
    views = status_views(cluster, observers)
    if len(views) < len(observers):
        return sorted(targets)
    return sorted({a for v in views.values() for a, code in v.items() if a in targets and not code.startswith("U")})


@task(name="drain-hints", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def drain_hints(
    cluster_id: str,
    targets: list[str],
    quiet_s: float = 25.0,
    stall_s: float = 120.0,
    timeout_s: float = 900.0,
    lease: Lease | None = None,
) -> HintDrainDoc:
    """Hint handoff resumed on every coordinator and its delivery watched: an action on the fenced log."""
    log = get_run_logger()
    cluster = Settings().cluster(cluster_id)
    storage = process_storage()
    fence = storage.fence(lease, holder=f"hints/{cluster_id}")
    with storage.side_effects.acting(fence, "hint_handoff", {"targets": targets}, cluster_id) as act:
        report = watch_drain(cluster, process_cql(cluster), targets, quiet_s, stall_s, timeout_s, progress=log.info)
        act.outcome, act.detail = report.state, {"elapsed_s": report.elapsed_s, "reason": report.reason}
    return report.as_dict()


@task(name="plan-repair-segments", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def plan_repair(
    cluster_id: str,
    targets: list[str],
    keyspaces: list[str] | None,
    plan_scope: list[ScopeEntry] | None,
    segments_per_range: int,
    token_range: tuple[int, int] | None = None,
) -> list[SegmentDoc]:
    """Segments of the planned scope (or, without one, the ranges the targets replicate on the current ring),
    cut to `token_range` (start exclusive, end inclusive) when one is given."""
    cluster = Settings().cluster(cluster_id)
    if plan_scope:
        scope = scope_from_plan(plan_scope, keyspaces)
    else:
        probes = probe_all(cluster, timeout_s=1.0)
        observer = next(n.name for n in cluster.nodes if probes[n.name].ok)
        scope = current_scope(cluster, process_cql(cluster), observer, targets, keyspaces)
    if token_range is not None:
        scope = [(ks, part) for ks, r in scope for part in clip([r], *token_range)]
    segs = plan_segments(scope, segments_per_range, avoid=targets)
    return [segment_doc(s) for s in segs]


@task(name="run-repair", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def run_repair(
    cluster_id: str,
    run_key: str,
    segments: list[SegmentDoc],
    kind: str,
    segment_timeout_s: float,
    max_attempts: int,
    inflight_wait_s: float,
    lease: Lease | None = None,
) -> RepairReportDoc:
    """Checkpointed in PostgreSQL under run_key: a rerun (same key) resumes, never repeats a done segment. With
    the incident's lease, every checkpoint write and every repair started is fenced by it."""
    log = get_run_logger()
    settings = Settings()
    cluster = settings.cluster(cluster_id)
    segs = [segment_of(d) for d in segments]
    storage = process_storage(settings)
    fence = storage.fence(lease, holder=f"repair/{run_key}")
    cfg = EngineConfig(
        kind, segment_timeout_s, max_attempts, inflight_wait_s, halt_check_s=settings.runbook.kill_switch_check_s
    )
    effects = storage.side_effects
    cql = process_cql(cluster)
    engine = RepairEngine(cluster, cql, storage.checkpoints, cfg, progress=log.info, fence=fence, effects=effects,
                          own_elsewhere=lambda: storage.checkpoints.in_flight(cluster.id))  # fmt: skip
    return engine.run(run_key, segs).as_dict()


@task(name="replace-node", persist_result=True, result_serializer="json")
def replace_node(cluster_id: str, incident_id: str, dead_address: str, approver: str, lease: Lease) -> ReplacementDoc:
    """Through the cluster's provisioner; fenced first, so a stale run never provisions anything."""

    t0 = time.monotonic()
    storage = process_storage()
    target = {"dead": dead_address, "approved_by": approver}
    with storage.side_effects.acting(storage.incidents.fence(lease), "replace_node", target, cluster_id):
        _event(incident_id, "replacement_started", {"dead": dead_address, "approved_by": approver}, lease)
        rep = provisioner_for(Settings(), cluster_id).replace(dead_address)
    doc: ReplacementDoc = {
        "dead_address": rep.dead_address,
        "new_address": rep.new_address,
        "new_name": rep.new_name,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "approved_by": approver,
    }
    _event(incident_id, "node_replaced", doc, lease)
    return doc


@task(name="kill-switch", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def automation_stopped(cluster_id: str) -> KillSwitchDoc | None:
    """The cluster's kill switch when automation is stopped (reason, who, since), else None."""
    s = process_storage().kill_switch.stopped(cluster_id)
    return None if s is None else {"reason": s.reason, "set_by": s.set_by, "since": s.since.isoformat()}
