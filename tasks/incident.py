"""Thin tasks over the incident store and Slack: identifiers and values in, plain values out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, cast

from prefect import task
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.clients.slack import IncidentThread, SlackNotifier
from cassandra_recovery.clients.slack_interactive import approval_blocks
from cassandra_recovery.contracts import EventView, IncidentView, PlanDoc, SlackPostDoc, Trigger
from cassandra_recovery.incident.store import Event, Incident, IncidentStore, Lease
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from tasks.pg_retry import PG_RETRIES

# A timeline event's data: free-form, any JSON-able mapping (a TypedDict report included, which JsonObject is not
# for mypy: TypedDicts are Mapping[str, object], not dict[str, JsonValue]).
EventData = Mapping[str, object]


def _store() -> IncidentStore:
    """The process's incident store: one pool per process, not one per task call."""
    return process_storage().incidents


def _plain(row: Incident | Event) -> dict[str, Any]:
    d = asdict(row)
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()}


def _incident_dict(inc: Incident) -> IncidentView:
    return cast(IncidentView, _plain(inc))  # built field by field from the dataclass: asdict is untyped


def _event_dict(event: Event) -> EventView:
    return cast(EventView, _plain(event))  # as above


# Side-effecting steps keep Prefect's default cache (inputs + flow run): a resumed run of the same flow run
# gets their results back instead of repeating them. Lease steps and observations always run again.
@task(
    name="open-or-join-incident", retries=2, retry_delay_seconds=[2, 10], persist_result=True, result_serializer="json"
)
def open_or_join(cluster_id: str, trigger: Trigger, actor: str) -> IncidentView:
    store = _store()
    inc, created = store.open_or_join(cluster_id, trigger, actor)
    return {**_incident_dict(inc), "created": created}


@task(
    name="take-incident-lease",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    persist_result=False,
    result_serializer="json",
)
def take_lease(incident_id: str, holder: str, run_key: str, ttl_s: float = 600.0) -> Lease | None:
    """A retried run (same run_key) takes the lease back at once; a rival run gets None and must not act."""
    store = _store()
    return store.acquire_lease(incident_id, holder, ttl_s, run_key=run_key)


@task(
    name="release-incident-lease", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json"
)
def release_lease(lease: Lease) -> bool:
    store = _store()
    return store.release_lease(lease)


@task(name="incident-transition", **PG_RETRIES, persist_result=True, result_serializer="json")
def transition(incident_id: str, expected: str, new: str, lease: Lease, data: EventData) -> IncidentView:
    store = _store()
    current = store.get(incident_id)
    if current.state == new:  # a retried step that already moved it: idempotent
        return _incident_dict(current)
    data = with_level(current.cluster_id, data)
    return _incident_dict(store.transition(incident_id, IncidentState(expected), IncidentState(new), lease, data))


def with_level(cluster_id: str, data: EventData) -> EventData:
    """Every step on the timeline says how much the automation was allowed to do when it was taken."""
    if "level" in data:
        return data
    try:
        level: str = Settings().cluster(cluster_id).automation
    except Exception:  # a cluster no longer configured: the step is still recorded
        level = "unknown"
    return {**data, "level": level}


@task(name="store-plan", **PG_RETRIES, persist_result=True, result_serializer="json")
def store_plan(incident_id: str, plan: PlanDoc, lease: Lease) -> None:
    store = _store()
    store.set_plan(incident_id, plan, lease)


@task(name="slack-incident-thread", **PG_RETRIES, persist_result=True, result_serializer="json")
def slack_thread(
    cluster_id: str, incident_id: str, title: str, fields: dict[str, str], lease: Lease, status: str = "open"
) -> SlackPostDoc:
    """Open the incident's thread once, update it on a retry (the thread id is stored on the incident);
    Slack trouble is recorded on the timeline and never fails the pipeline."""
    settings = Settings()
    cluster = settings.cluster(cluster_id)
    store = _store()
    inc = store.get(incident_id)
    known = IncidentThread(inc.slack_channel, inc.slack_ts) if inc.slack_channel and inc.slack_ts else None
    slack = SlackNotifier(settings.slack_token, cluster.slack_channel, base_url=settings.slack_base_url)
    thread = slack.open_thread(incident_id, title, fields, thread=known, status=status)
    if thread is not None and thread != known:
        store.set_slack_thread(incident_id, thread.channel, thread.ts, lease)
    if thread is None:
        reason = "logged-only (no Slack token or channel)" if not slack.configured else "Slack unavailable"
        store.append_event(
            incident_id, "slack_not_posted", "pipeline", {"reason": reason, "title": title, "fields": fields}, lease
        )
    return {
        "posted": thread is not None,
        "channel": thread.channel if thread else None,
        "ts": thread.ts if thread else None,
    }


@task(name="slack-incident-reply", **PG_RETRIES, persist_result=True, result_serializer="json")
def slack_reply(
    cluster_id: str, incident_id: str, text: str, lease: Lease, buttons_for: int | None = None
) -> SlackPostDoc:
    """A reply in the incident's thread (or the log without Slack); never fails the pipeline. `buttons_for`: the
    seq of the approval request the reply asks about, answered with its Approve and Reject buttons."""
    settings = Settings()
    cluster = settings.cluster(cluster_id)
    store = _store()
    inc = store.get(incident_id)
    thread = IncidentThread(inc.slack_channel, inc.slack_ts) if inc.slack_channel and inc.slack_ts else None
    slack = SlackNotifier(settings.slack_token, cluster.slack_channel, base_url=settings.slack_base_url)
    blocks = None if buttons_for is None else approval_blocks(text, incident_id, buttons_for)
    res = slack.reply(thread, text, blocks)
    if not res.ok:
        store.append_event(incident_id, "slack_not_posted", "pipeline", {"reason": res.error, "text": text}, lease)
    return {"posted": res.ok, "error": res.error}


@task(name="get-incident", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def get_incident(incident_id: str) -> IncidentView:
    store = _store()
    return _incident_dict(store.get(incident_id))


@task(name="incident-events", **PG_RETRIES, cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def incident_events(incident_id: str) -> list[EventView]:
    store = _store()
    return [_event_dict(e) for e in store.events(incident_id)]
