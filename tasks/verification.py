"""Thin tasks of the verification and post-mortem phases: identifiers and values in, plain dicts out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment

from cassandra_recovery.contracts import FixDoc, FollowUpDoc, FollowUpTable, ReadLimits, VerificationReportDoc
from cassandra_recovery.detection.clock import max_spread_ms
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from cassandra_recovery.verification.service import fix, verify
from cassandra_recovery.verification.verifier import VerificationReport, VerifyConfig
from cassandra_recovery.wiring import process_cql
from deployments.names import FOLLOW_UP_DEPLOYMENT
from tasks.recovery import _event

KEYS_IN_EVENT = 50


def event_doc(report: VerificationReportDoc, stage: str) -> dict[str, object]:
    """What the timeline keeps of a verification pass (the full report is the task's result)."""
    return {
        "verdict": report["verdict"],
        "pass": stage,
        "table": f"{report['keyspace']}.{report['table']}",
        "reference": report["reference"],
        "rows_compared": report["rows_compared"],
        "mismatches": report["mismatches"],
        "unverified": len(report["unverified"]),
        "replicas": report["replicas"],
        "down": report["down"],
        "keys": {k: v[:KEYS_IN_EVENT] for k, v in report["keys"].items()},
        "preview": None if report["preview"] is None else {"in_sync": report["preview"].get("in_sync")},
        "reasons": report["reasons"][:10],
        "elapsed_s": report["elapsed_s"],
        "clock_skew": report.get("clock_skew", {}),
        "clock_spread_ms": max_spread_ms(report.get("clock_skew", {})),
        "scope": report.get("scope"),
    }


def _timeline(doc: FollowUpDoc) -> dict[str, object]:
    """What the timeline keeps of a follow-up scheduled: the result without its flag (the event's kind says it)."""
    return {k: v for k, v in doc.items() if k != "scheduled"}


@task(name="verify-table", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def verify_table(
    cluster_id: str,
    keyspace: str | None = None,
    table: str | None = None,
    stage: str = "initial",
    incident_id: str | None = None,
    lease: Lease | None = None,
    fixed: FixDoc | None = None,
    missed_since: str | None = None,
    limits: ReadLimits | None = None,
) -> VerificationReportDoc:
    """One read-only pass: every replica's copy against the source of truth; recorded on the incident (with the
    fix that preceded it, if any). `missed_since` (ISO 8601): when the outage was first seen; the pass then reads
    only the keys changed since (the outage-scoped proof) when it can. The follow-up's full pass is paced."""

    log = get_run_logger()
    if incident_id:  # fenced first: a superseded run reads nothing
        _event(incident_id, "verification_started", {"pass": stage, "keyspace": keyspace, "table": table}, lease)
    settings = Settings()
    v = settings.verification
    paced = {"rows_per_s": v.follow_up_rows_per_s} if stage == "follow_up" else {}
    cfg = VerifyConfig.from_settings(v, **(paced | dict(limits or {})))
    since = datetime.fromisoformat(missed_since) if missed_since else None
    cql = process_cql(settings.cluster(cluster_id))
    done = verify(settings, cluster_id, keyspace, table, config=cfg, progress=log.info, missed_since=since, cql=cql)
    report = done.as_dict()
    log.info(
        "verification (%s) of %s.%s: %s, %d rows compared, %d mismatching chunk(s)",
        stage,
        report["keyspace"],
        report["table"],
        report["verdict"],
        report["rows_compared"],
        report["mismatches"],
    )
    if incident_id:
        doc = event_doc(report, stage)
        if fixed:
            kept: dict[str, object] = {
                "method": fixed.get("method"),
                "keys": fixed.get("keys"),
                "why": fixed.get("why"),
            }
            if isinstance(kept["keys"], list):
                kept["keys"] = len(kept["keys"])
            doc["fixed"] = kept
        _event(incident_id, "verified", doc, lease)
    return report


@task(name="fix-divergence", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def fix_divergence(
    cluster_id: str,
    report: VerificationReportDoc,
    run_key: str,
    incident_id: str | None = None,
    lease: Lease | None = None,
    max_keys: int | None = None,
) -> FixDoc:
    """The named keys fixed in place, or their ranges repaired: whichever is cheaper (the reason is recorded).
    `max_keys`: fixed in place up to this many keys (settings' `verification.max_fix_keys` by default)."""

    log = get_run_logger()
    settings = Settings()
    if incident_id:
        _event(incident_id, "fix_started", {"mismatches": report["mismatches"]}, lease)
    done = fix(  # its result is the FixDoc shape (verification/service.py)
        settings,
        cluster_id,
        VerificationReport.from_dict(report),
        run_key,
        settings.verification.max_fix_keys if max_keys is None else max_keys,
        log.info,
        fence=None if lease is None else process_storage(settings).incidents.fence(lease),
        cql=process_cql(settings.cluster(cluster_id)),
    )
    if incident_id:
        keys = done.get("keys")
        _event(incident_id, "fixed", done | {"keys": keys[:KEYS_IN_EVENT] if isinstance(keys, list) else keys}, lease)
    return done


@task(name="schedule-follow-up", persist_result=True, result_serializer="json")
def schedule_follow_up(cluster_id: str, incident_id: str, after_s: float, lease: Lease) -> FollowUpDoc:
    """The runbook's "monitor for 24 hours": a follow-up verification run of the served deployment, `after_s`
    from now; one per monitoring period (the key holds the lease's fencing token)."""

    at = datetime.now(UTC) + timedelta(seconds=after_s)
    try:
        run = run_deployment(
            FOLLOW_UP_DEPLOYMENT,
            parameters={"cluster_id": cluster_id, "incident_id": incident_id},
            scheduled_time=at,
            timeout=0,
            as_subflow=False,
            idempotency_key=f"follow-up/{incident_id}/{lease.token}",
        )
    except Exception as e:  # no served deployment: the incident stays open and says why
        failed: FollowUpDoc = {"scheduled": False, "error": f"{type(e).__name__}: {e}"[:500], "at": at.isoformat()}
        _event(incident_id, "follow_up_not_scheduled", _timeline(failed), lease)
        return failed
    done: FollowUpDoc = {"scheduled": True, "at": at.isoformat(), "flow_run_id": str(run.id)}  # type: ignore[union-attr]  # sync call
    _event(incident_id, "follow_up_scheduled", _timeline(done), lease)
    return done


@task(name="defer-follow-up", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def defer_follow_up(
    cluster_id: str, incident_id: str, after_s: float, params: FollowUpTable, deferred_by: str
) -> FollowUpDoc:
    """The follow-up found the incident held by another run: schedule another follow-up `after_s` from now (one per
    deferring run) and say so on the timeline, instead of failing while the incident is being handled."""

    at = datetime.now(UTC) + timedelta(seconds=after_s)
    doc: FollowUpDoc = {
        "scheduled": False,
        "reason": "the incident's lease is held by another run",
        "at": at.isoformat(),
    }
    try:
        run = run_deployment(
            FOLLOW_UP_DEPLOYMENT,
            parameters={"cluster_id": cluster_id, "incident_id": incident_id, **params},
            scheduled_time=at,
            timeout=0,
            as_subflow=False,
            idempotency_key=f"follow-up/{incident_id}/after/{deferred_by}",
        )
    except Exception as e:  # no served deployment: the timeline says so; the holder's run goes on
        doc["error"] = f"{type(e).__name__}: {e}"[:500]
        _event(incident_id, "follow_up_not_scheduled", _timeline(doc), None)
        return doc
    doc["scheduled"] = True
    doc["flow_run_id"] = str(run.id)  # type: ignore[union-attr]  # sync call
    _event(incident_id, "follow_up_deferred", _timeline(doc), None)
    return doc
