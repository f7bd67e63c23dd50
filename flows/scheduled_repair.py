"""Routine repair on a schedule (daily incremental, weekly full): skipped while an incident is open, paced,
kept out of blackouts, resumed after a crash without repeating completed segments, escalated when stuck."""

from __future__ import annotations

from typing import cast

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from cassandra_recovery.contracts import Pacing, ScheduledRepairResult
from cassandra_recovery.logic import repair_windows as rw
from cassandra_recovery.settings import Settings
from deployments import names
from tasks.recovery import plan_repair
from tasks.scheduled import escalate_to_slack, log_schedule, paced_repair, skip_reason


@flow(name=names.SCHEDULED_REPAIR, persist_result=True, result_serializer="json")
def scheduled_repair(
    schedule: str = "manual",
    cluster_id: str | None = None,
    keyspaces: list[str] | None = None,
    kind: str = "incremental",
    intensity: float = 0.5,
    blackouts: list[str] | None = None,
    windows: list[str] | None = None,
    timezone: str = "UTC",
    segments_per_range: int = 4,
    segment_timeout_s: float = 1800.0,
    max_attempts: int = 3,
) -> ScheduledRepairResult:
    """One routine repair; the run key is this flow run's id, so a crashed run that is resumed skips what it
    finished. Blackouts/windows: "Mon-Fri 08:00-18:00" in `timezone`; intensity in (0, 1] (Reaper's)."""

    log = get_run_logger()
    if kind not in ("full", "incremental"):
        raise ValueError(f"kind must be full or incremental, got {kind!r}")
    rw.pause_after(1.0, intensity)  # ValueError for an intensity outside (0, 1]
    rw.parse_blackouts(list(blackouts or [])), rw.parse_windows(list(windows or []))  # bad specs fail early
    cluster = Settings().cluster(cluster_id).id
    key = f"scheduled/{schedule}/{flow_run.id}"
    if why := skip_reason(cluster):
        log.info("scheduled repair %s skipped: %s", schedule, why)
        log_schedule(schedule, cluster, kind, key, "skipped", why)
        return {"schedule": schedule, "cluster": cluster, "skipped": why}
    segments = plan_repair(cluster, [], keyspaces, None, segments_per_range)
    log_schedule(schedule, cluster, kind, key, "started", "", {"segments": len(segments)})
    pacing: Pacing = {
        "intensity": intensity,
        "blackouts": list(blackouts or []),
        "windows": list(windows or []),
        "timezone": timezone,
    }
    report = paced_repair(cluster, key, segments, kind, pacing, segment_timeout_s, max_attempts)
    outcome = "escalated" if report["escalated"] else "skipped" if report.get("interrupted") else "done"
    figures = ("segments", "ran", "already_done", "reconciled", "retries", "held_s", "paused_s")
    reason = "; ".join(report["reasons"])[:1000]
    log_schedule(schedule, cluster, kind, key, outcome, reason, {k: v for k, v in report.items() if k in figures})
    if report["escalated"]:
        escalate_to_slack(cluster, schedule, key, report["reasons"])
    result = {"schedule": schedule, "cluster": cluster, "run_key": key, "outcome": outcome, **report}
    return cast(ScheduledRepairResult, result)  # the report's keys under the run's: mypy checks neither ** nor update
