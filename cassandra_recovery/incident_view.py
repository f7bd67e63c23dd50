"""What a person sees of incidents (`cassandra-recovery incident list|show`): read-only, from PostgreSQL alone, so it
answers while Cassandra, Prefect or the automation are down.

`show` gathers what an on-call engineer asks first: the state and since when, who holds the lease (and whether that
holder is alive: a lease past its expiry is a run that stopped renewing), how much the automation may do on the
cluster, the plan, the degraded policy and the repair pause this incident owns, and the timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cassandra_recovery.incident.store import Event, Incident
from cassandra_recovery.logic.mitigation_state import mitigation_in_force
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import Storage


def lease_of(inc: Incident, now: datetime) -> dict[str, Any] | None:
    """The lease as a person reads it: who, until when, and whether it is still live."""
    if inc.lease_holder is None or inc.lease_expires_at is None:
        return None
    live = inc.lease_expires_at > now
    return {"holder": inc.lease_holder, "token": inc.fencing_token, "expires_at": inc.lease_expires_at.isoformat(),
            "live": live}  # fmt: skip


def row_of(inc: Incident, now: datetime) -> dict[str, Any]:
    """One line of `incident list`."""
    trigger, plan = inc.trigger or {}, inc.plan or {}
    lease = lease_of(inc, now)
    return {
        "id": inc.id,
        "cluster": inc.cluster_id,
        "state": inc.state.value,
        "opened_at": inc.opened_at.isoformat(timespec="seconds"),
        "age": _age((inc.closed_at or now) - inc.opened_at),
        "nodes": ",".join(str(n) for n in trigger.get("nodes") or []) or "-",
        "source": str(trigger.get("source", "-")),
        "plan": str(plan.get("action", "-")),
        "held_by": "-" if lease is None else lease["holder"] + ("" if lease["live"] else " (lapsed)"),
        "closed_at": None if inc.closed_at is None else inc.closed_at.isoformat(timespec="seconds"),
    }


def incident_rows(
    storage: Storage, now: datetime, cluster_id: str | None = None, include_closed: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    return [row_of(i, now) for i in storage.incidents.recent(limit, cluster_id, include_closed)]


def incident_detail(
    storage: Storage, settings: Settings, incident_id: str, now: datetime, last: int = 30
) -> dict[str, Any]:
    """Everything `incident show` prints; IncidentNotFound for an unknown id."""
    inc = storage.incidents.get(incident_id)
    events = storage.incidents.events(incident_id)
    owned = mitigation_in_force({"kind": e.kind, "data": e.data} for e in events)
    pause = storage.pauses.get(inc.cluster_id)
    policy = storage.policy.get(inc.cluster_id) if owned is not None else None
    return {
        **row_of(inc, now),
        "lease": lease_of(inc, now),
        "automation": _automation(settings, inc.cluster_id),
        "trigger": inc.trigger,
        "plan": inc.plan,
        # What this incident changed on the cluster and has not given back yet.
        "owns": {
            "policy": None
            if policy is None or policy.incident_id not in (None, inc.id)
            else {"mode": policy.mode.value, "read_consistency": policy.read_consistency, "since": _iso(policy.since)},
            "repair_pause": None
            if pause is None or pause.incident_id != inc.id
            else {"reason": pause.reason, "set_by": pause.set_by, "since": _iso(pause.since)},
        },  # fmt: skip
        "slack": None if inc.slack_ts is None else {"channel": inc.slack_channel, "ts": inc.slack_ts},
        "events": len(events),
        "timeline": [event_line(e) for e in events[-last:]],
    }


def event_line(e: Event) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at.isoformat(timespec="seconds"), "kind": e.kind, "actor": e.actor,
            "token": e.fencing_token, "data": e.data}  # fmt: skip


def _automation(settings: Settings, cluster_id: str) -> str:
    try:
        return settings.cluster(cluster_id).automation
    except Exception:  # noqa: BLE001 - a cluster no longer configured still shows its incidents
        return "unknown (cluster not configured)"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="seconds")


def _age(d: Any) -> str:
    s = int(d.total_seconds())
    return f"{s // 86400}d{s % 86400 // 3600}h" if s >= 86400 else f"{s // 3600}h{s % 3600 // 60:02d}m"
