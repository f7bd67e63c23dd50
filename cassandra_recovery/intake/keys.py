"""Pure identities of an alert: the de-duplication key, the Prefect idempotency key and the trigger document."""

from __future__ import annotations

import hashlib
from typing import Any

from cassandra_recovery.intake.payload import Alert

LAUNCH_KEY_PREFIX = "cassandra-recovery-alert-"


def _digest(*parts: str) -> str:
    # \x1f cannot occur in a label or fingerprint by accident, so no two part lists give one text.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def episode_parts(alert: Alert) -> tuple[str, ...]:
    """One firing episode of one alert: same fingerprint and same start. A re-fire has a new startsAt."""
    return (alert.source, alert.cluster_id, alert.fingerprint, alert.starts_at.isoformat())


def dedup_key(alert: Alert) -> str:
    """Same key for every re-send of the same state of the same episode (repeat_interval, retries, replays)."""
    return _digest(*episode_parts(alert), alert.status)


def launch_key(alert: Alert) -> str:
    """Prefect idempotency key: one incident run per firing episode. Prefect keeps keys forever, so the key
    must change when the alert fires again (new startsAt), and be the same whichever path delivers it."""
    return LAUNCH_KEY_PREFIX + _digest(*episode_parts(alert))[:40]


def trigger_doc(alert: Alert) -> dict[str, Any]:
    """The incident's trigger, in the shape the detector uses (source, kind, nodes, reasons) plus the alert."""
    return {
        "source": f"alert:{alert.source}",
        "kind": "alert",
        "status": alert.status,
        "alertname": alert.name,
        "nodes": list(alert.nodes),
        "reasons": [alert.summary],
        "fingerprint": alert.fingerprint,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "generator_url": alert.generator_url,
        "dedup_key": dedup_key(alert),
    }
