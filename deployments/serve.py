"""The project's deployments, served by one long-lived process (`cassandra-recovery serve`)."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import time
from typing import Any

import httpx
from prefect import serve
from prefect.schedules import Cron, Interval

from cassandra_recovery.lab.prefect_server import ready
from cassandra_recovery.settings import Settings
from deployments import names
from deployments.resume import start_resumer
from deployments.zombies import ensure_zombie_automation
from flows.assess import assess
from flows.detect import detect
from flows.incident import incident_response
from flows.operator import incident_ack, incident_escalate, incident_hand_back, incident_resolve
from flows.queue import drain_write_queue
from flows.recover import repair
from flows.scheduled_repair import scheduled_repair
from flows.verify import follow_up_verification, verify
from flows.watchdog import run_watchdog

log = logging.getLogger(__name__)


def build_deployments() -> list[Any]:
    every_s = Settings().runbook.watchdog_every_s
    tags = names.TAGS
    return [
        # One incident run at a time per deployment; the incident lease makes it one per cluster too.
        incident_response.to_deployment(name=names.INCIDENT_RESPONSE, tags=tags),
        detect.to_deployment(name=names.DETECT, tags=tags),
        assess.to_deployment(name=names.ASSESS, tags=tags),
        drain_write_queue.to_deployment(name=names.DRAIN_WRITE_QUEUE, tags=tags),
        repair.to_deployment(name=names.REPAIR, tags=tags),
        verify.to_deployment(name=names.VERIFY, tags=tags),
        follow_up_verification.to_deployment(name=names.FOLLOW_UP_VERIFICATION, tags=tags),
        scheduled_repair.to_deployment(
            name=names.SCHEDULED_REPAIR, tags=[*tags, "repair"], schedules=repair_schedules()
        ),
        run_watchdog.to_deployment(name=names.RUN_WATCHDOG, tags=tags, schedules=[Interval(every_s)]),
        incident_ack.to_deployment(name=names.INCIDENT_ACK, tags=tags),
        incident_escalate.to_deployment(name=names.INCIDENT_ESCALATE, tags=tags),
        incident_hand_back.to_deployment(name=names.INCIDENT_HAND_BACK, tags=tags),
        incident_resolve.to_deployment(name=names.INCIDENT_RESOLVE, tags=tags),
    ]


def repair_schedules() -> list[Any]:
    """The routine repairs from settings (daily incremental at 03:00, weekly full on Sunday at 02:00 by default),
    each a schedule of the one `scheduled-repair` deployment with its own parameters: editable in the UI."""

    out = []
    for s in Settings().repair_schedules:
        params = {
            "schedule": s.name,
            "cluster_id": s.cluster_id,
            "keyspaces": s.keyspaces,
            "kind": s.kind,
            "intensity": s.intensity,
            "blackouts": s.blackouts,
            "windows": s.windows,
            "timezone": s.timezone,
            "segments_per_range": s.segments_per_range,
            "segment_timeout_s": s.segment_timeout_s,
            "max_attempts": s.max_attempts,
        }
        if s.interval_s is not None:
            out.append(Interval(s.interval_s, timezone=s.timezone, parameters=params, slug=s.name))
        else:
            out.append(Cron(s.cron, timezone=s.timezone, parameters=params, slug=s.name))
    return out


def serve_all(limit: int = 4, max_resumes: int = 2) -> None:
    settings = Settings()
    poll_s = settings.prefect.runner_poll_s
    # The served runs (child processes) inherit it: they emit heartbeat events this often.
    os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(settings.prefect.flow_heartbeat_s)
    try:
        done = ensure_zombie_automation(settings.prefect.zombie_after_s)
        log.info("zombie-run automation: %s", done)
    except Exception as e:  # noqa: BLE001 - the lease watchdog still takes incidents over; say so and serve
        log.warning("could not set up the zombie-run automation (%s: %s)", type(e).__name__, e)
    ride_out_api_outages()
    stop = start_resumer(max_resumes=max_resumes)
    try:
        while True:
            try:
                serve(*build_deployments(), limit=limit, pause_on_shutdown=False, query_seconds=poll_s)
                return
            except Exception as e:  # noqa: BLE001 - only the API being away is ridden out; the rest is raised
                if not api_gave_up(e):
                    raise
                # Registering the deployments failed, or the runner gave up although its poll rides out outages
                # (a PostgreSQL restart takes the API with it): serve again once the API answers.
                log.error("the Prefect API stopped answering; serving again once it is back")
                wait_for_api(settings)
    finally:
        stop.set()


def ride_out_api_outages() -> bool:
    """Make the runner's poll for scheduled runs skip a round when the API is away instead of counting it as an
    error: after three failed polls Prefect's runner gives up, and its teardown kills every flow run it started
    (an incident run in the middle of its recovery). Prefect has no setting for this; the wrapper is narrow (only
    5xx and connection errors are skipped). False, with a warning, when the installed Prefect has no such poll."""

    try:
        poller: Any = importlib.import_module("prefect.runner._scheduled_run_poller").ScheduledRunPoller
    except (ImportError, AttributeError):
        poller = None
    poll = getattr(poller, "_get_and_submit_flow_runs", None)
    if poll is None:
        log.warning("this Prefect's runner has no scheduled-run poll to wrap: an API outage restarts serving")
        return False
    if not getattr(poll, "_rides_out_outages", False):
        poller._get_and_submit_flow_runs = skip_api_outages(poll)
    return True


def skip_api_outages(poll: Any) -> Any:
    """`poll` (an async method) returning None instead of raising when the API is away (5xx, no connection)."""

    @functools.wraps(poll)
    async def polled(*args: Any, **kwargs: Any) -> Any:
        try:
            return await poll(*args, **kwargs)
        except (httpx.TransportError, httpx.HTTPStatusError) as e:
            if isinstance(e, httpx.HTTPStatusError) and e.response.status_code < 500:
                raise
            log.warning("the Prefect API is away (%s): polling again next round", type(e).__name__)
            return None

    polled._rides_out_outages = True  # type: ignore[attr-defined]
    return polled


def api_gave_up(exc: BaseException) -> bool:
    """Whether `exc` (or an exception inside it: the runner's task groups wrap it) is the Prefect API being away:
    the runner giving up after failed polls, or the deployments' registration failing (5xx or no connection)."""

    seen: list[BaseException] = [exc]
    while seen:
        e = seen.pop()
        if isinstance(e, RuntimeError) and "exceeded error threshold" in str(e):
            return True
        if isinstance(e, httpx.TransportError):
            return True
        if isinstance(e, httpx.HTTPStatusError) and e.response.status_code >= 500:
            return True
        seen += list(getattr(e, "exceptions", ()))
        seen += [x for x in (e.__cause__, e.__context__) if x is not None]
        if len(seen) > 50:
            return False
    return False


def wait_for_api(settings: Any, every_s: float = 2.0) -> None:
    """Until the project's Prefect server answers and reaches its database (however long the outage lasts)."""

    waited = 0.0
    while not ready(settings):
        time.sleep(every_s)
        waited += every_s
        if waited % 60 < every_s:
            log.warning("still waiting for the Prefect API (%.0fs)", waited)
