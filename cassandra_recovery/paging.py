"""Paging a person about an incident the automation handed over (escalated): once per key (a new outage joining
it, a repair-age period), through Slack (@here in the channel) and, when configured, an alert posted to
Alertmanager's API, which routes it to the on-call pager like any alert. Each page is on the timeline (`paged`);
a failed channel is recorded there, never raised: the caller's own work (accepting an alert) goes on."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cassandra_recovery.clients.slack import IncidentThread, SlackNotifier
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.logic.escalated import already_paged
from cassandra_recovery.settings import ClusterConfig, Settings

log = logging.getLogger(__name__)
PAGE_ALERT = "CassandraRecoveryNeedsPerson"
PAGE_SOURCE = "cassandra-recovery"  # the label a route (and the receiver) tells the tool's own pages by


def page(
    settings: Settings,
    incidents: IncidentStore,
    cluster: ClusterConfig,
    incident_id: str,
    key: str,
    why: str,
    actor: str,
) -> dict[str, Any] | None:
    """Page about the incident unless this key was paged already; what each channel answered, or None."""
    cluster_id = cluster.id
    if already_paged(({"kind": e.kind, "data": e.data} for e in incidents.events(incident_id)), key):
        return None
    text = f"Incident {incident_id} on {cluster_id} needs a person: {why}"
    inc = incidents.get(incident_id)
    thread = IncidentThread(inc.slack_channel, inc.slack_ts) if inc.slack_channel and inc.slack_ts else None
    slack = SlackNotifier(settings.slack_token, cluster.slack_channel, base_url=settings.slack_base_url)
    posted = slack.page(thread, text)
    doc: dict[str, Any] = {"key": key, "why": why[:1000], "slack": "posted" if posted.ok else posted.error}
    if settings.paging.alertmanager_url:
        url, ttl = settings.paging.alertmanager_url, settings.paging.alert_ttl_s
        doc["alert"] = post_page_alert(url, ttl, cluster_id, incident_id, text)
    incidents.append_event(incident_id, "paged", actor, doc)
    log.warning("paged: %s", text)
    return doc


def post_page_alert(base_url: str, ttl_s: float, cluster_id: str, incident_id: str, text: str) -> str:
    """POST /api/v2/alerts: one alert per incident (same labels), its endsAt pushed forward by every page."""
    now = datetime.now(UTC)
    alert = {
        "labels": {
            "alertname": PAGE_ALERT,
            "cluster": cluster_id,
            "incident": incident_id,
            "severity": "page",
            "source": PAGE_SOURCE,
        },  # fmt: skip
        "annotations": {"summary": text[:1000]},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(seconds=ttl_s)).isoformat(),
    }
    url = base_url.rstrip("/") + "/api/v2/alerts"
    try:
        resp = httpx.post(url, json=[alert], timeout=5.0)
    except httpx.HTTPError as e:
        log.warning("page alert not posted to Alertmanager: %s", e)
        return f"failed: {type(e).__name__}: {e}"[:300]
    return "posted" if resp.status_code == 200 else f"failed: HTTP {resp.status_code}: {resp.text[:200]}"
