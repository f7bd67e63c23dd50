"""Thin tasks of the scheduled repair: why a run is skipped, the paced segment loop, the log, the escalation."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.clients.slack import SlackNotifier
from cassandra_recovery.contracts import Pacing, RepairReportDoc, SegmentDoc
from cassandra_recovery.controls.killswitch import AutomationStopped
from cassandra_recovery.logic import repair_windows as rw
from cassandra_recovery.logic.escalated import near_gc_grace, overdue_summary, repairs_held
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.segments import Segment
from cassandra_recovery.recovery.repair import EngineConfig, RepairEngine
from cassandra_recovery.scheduled.repair_metrics import current_repair_ages
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from cassandra_recovery.wiring import process_cql
from tasks.recovery import segment_of


def _skip_reason(cluster_id: str, note: bool = False) -> str | None:
    """Why routine repair must not run now, None when it may. An escalated incident (and the pause it owns) gives
    way once a table's repair age nears gc_grace_seconds, unless a person holds repair for it: that incident waits
    for a person, maybe for days, and deleted data must not resurrect meanwhile. `note`: say so on its timeline."""
    storage = process_storage()
    if (stop := storage.kill_switch.stopped(cluster_id)) is not None:
        return f"automation stopped by {stop.set_by}: {stop.reason}"
    inc, pause = storage.incidents.open_for(cluster_id), storage.pauses.get(cluster_id)
    if pause is not None and pause.incident_id is None:  # a person's pause always holds
        return f"repairs paused by {pause.set_by}: {pause.reason}"
    if inc is None:
        return None if pause is None else f"repairs paused by {pause.set_by}: {pause.reason}"
    why = f"incident {inc.id} is open ({inc.state.value})"
    if inc.state is not IncidentState.ESCALATED:
        return why
    events = [{"kind": e.kind, "data": e.data, "actor": e.actor} for e in storage.incidents.events(inc.id)]
    if (held := repairs_held(events)) is not None:
        return f"{why}; routine repair {held}"
    settings = Settings()
    ages = current_repair_ages(storage.schedule_log, process_cql(settings.cluster(cluster_id)), cluster_id, _now())
    overdue = near_gc_grace(ages, settings.paging.repair_age_margin_s)
    if not overdue:
        return why
    said = f"routine repair runs despite escalated incident {inc.id}: {overdue_summary(overdue)}"
    get_run_logger().warning(said)
    if note:
        storage.incidents.append_event(inc.id, "routine_repair_overrides", "scheduled-repair", {"reason": said})
    return None


def _now() -> datetime:
    return datetime.now(UTC)


class Interrupted(Exception):
    """Routine repair gives way: an incident opened (or a pause or the kill switch) while it ran."""


@task(name="repair-skip-reason", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def skip_reason(cluster_id: str) -> str | None:
    """Why routine repair must not run now: an open incident, a repair pause, or the kill switch."""
    return _skip_reason(cluster_id, note=True)


@task(name="repair-schedule-log", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def log_schedule(
    schedule: str, cluster_id: str, kind: str, run_key: str | None, outcome: str, reason: str = "",
    detail: Mapping[str, object] | None = None,
) -> None:  # fmt: skip
    process_storage().schedule_log.record(schedule, cluster_id, kind, run_key, outcome, reason, detail)


@task(name="paced-repair", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def paced_repair(
    cluster_id: str,
    run_key: str,
    segments: list[SegmentDoc],
    kind: str,
    pacing: Pacing,
    segment_timeout_s: float,
    max_attempts: int,
) -> RepairReportDoc:
    """The checkpointed engine with a gate before each segment: the intensity pause after the previous one,
    then no start inside a blackout or outside the windows (it waits, saying until when)."""

    log = get_run_logger()
    settings = Settings()
    cluster = settings.cluster(cluster_id)
    tz = pacing["timezone"]
    blackouts, windows = rw.parse_blackouts(pacing["blackouts"]), rw.parse_windows(pacing["windows"])
    segs = [segment_of(d) for d in segments]
    art = cast(UUID, create_progress_artifact(0.0, description=f"repair {run_key}: segments started"))  # sync call
    started = {"n": 0, "held_s": 0.0, "paused_s": 0.0}

    def gate(seg: Segment, last_s: float | None) -> None:
        if why := _skip_reason(cluster_id):  # checked before every segment: an incident's recovery comes first
            raise Interrupted(why)
        if last_s is not None and (pause := rw.pause_after(last_s, pacing["intensity"])) > 0:
            log.info("intensity %.2f: pausing %.1fs after a %.1fs segment", pacing["intensity"], pause, last_s)
            time.sleep(pause)
            started["paused_s"] += pause
        while True:
            now = datetime.now(UTC)
            ok, why = rw.may_start(windows, blackouts, tz, now)
            if ok:
                break
            until = rw.next_start(windows, blackouts, tz, now)
            log.info("holding %s %s: %s; next start %s", seg.keyspace, seg.range_text, why, until.isoformat())
            wait = min(max((until - now).total_seconds(), 0.5), 60.0)
            time.sleep(wait)
            started["held_s"] += wait
        if why := _skip_reason(cluster_id):  # and again after any wait: the switch or an incident may have come
            raise Interrupted(why)
        started["n"] += 1
        update_progress_artifact(art, 100.0 * (started["n"] - 1) / max(len(segs), 1))

    storage = process_storage(settings)
    fence = storage.fence(None, holder=f"schedule/{run_key}")
    cfg = EngineConfig(kind, segment_timeout_s, max_attempts, halt_check_s=settings.runbook.kill_switch_check_s)
    cql = process_cql(cluster)
    engine = RepairEngine(
        cluster,
        cql,
        storage.checkpoints,
        cfg,
        progress=log.info,
        before_segment=gate,
        fence=fence,
        effects=storage.side_effects,
        own_elsewhere=lambda: storage.checkpoints.in_flight(cluster.id),  # an incident's segment is not foreign
    )
    try:
        rep = engine.run(run_key, segs)
    except (Interrupted, AutomationStopped) as e:  # AutomationStopped: refused at the start, or cancelled in flight
        log.warning("routine repair interrupted before segment %d: %s", started["n"] + 1, e)
        return {"interrupted": str(e), "escalated": False, "reasons": [str(e)], "segments": len(segs),
                "ran": int(started["n"]), "already_done": 0, "reconciled": 0, "retries": 0,
                "held_s": round(started["held_s"], 1), "paused_s": round(started["paused_s"], 1)}  # fmt: skip
    update_progress_artifact(art, 100.0 if not rep.escalated else 100.0 * started["n"] / max(len(segs), 1))
    return rep.as_dict() | {"held_s": round(started["held_s"], 1), "paused_s": round(started["paused_s"], 1)}


@task(name="repair-escalation", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def escalate_to_slack(cluster_id: str, schedule: str, run_key: str, reasons: list[str]) -> bool:
    settings = Settings()
    cluster = settings.cluster(cluster_id)
    slack = SlackNotifier(settings.slack_token, cluster.slack_channel, base_url=settings.slack_base_url)
    fields = {"cluster": cluster_id, "schedule": schedule, "run": run_key, "reasons": "; ".join(reasons)[:1900] or "-"}
    thread = slack.open_thread(
        f"repair-{schedule}", f"Scheduled repair escalated on {cluster_id}", fields, status="escalated"
    )
    return thread is not None
