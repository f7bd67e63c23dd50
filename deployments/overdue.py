"""The watchdog's page about escalated incidents whose cluster nears gc_grace_seconds without a repair: every
`paging.every_s` (one page per period and incident, wherever the pass runs), saying whether routine repair will
run or a person holds it. Runs with the watchdog's pass (inside every `serve`, and the `run-watchdog` deployment)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from cassandra_recovery.logic.escalated import age_page_key, near_gc_grace, overdue_summary, repairs_held
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.paging import page
from cassandra_recovery.scheduled.repair_metrics import current_repair_ages
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import Storage
from cassandra_recovery.wiring import process_cql

log = logging.getLogger(__name__)
_LOOKED: dict[str, float] = {}  # cluster -> when this process last read its repair ages (the pass runs every 5 s)
LOOK_EVERY_S = 60.0


def page_overdue_repairs_once(storage: Storage, settings: Settings, now: datetime | None = None) -> list[str]:
    """The escalated incidents paged about in this pass."""
    now = now or datetime.now(UTC)
    paged = []
    for inc in storage.incidents.open_incidents():
        if inc.state is not IncidentState.ESCALATED:
            continue
        if time.monotonic() - _LOOKED.get(inc.cluster_id, -LOOK_EVERY_S) < LOOK_EVERY_S:
            continue
        _LOOKED[inc.cluster_id] = time.monotonic()
        try:
            cluster = settings.cluster(inc.cluster_id)
            ages = current_repair_ages(storage.schedule_log, process_cql(cluster), cluster.id, now)
            overdue = near_gc_grace(ages, settings.paging.repair_age_margin_s)
            if not overdue:
                continue
            events = [{"kind": e.kind, "data": e.data, "actor": e.actor} for e in storage.incidents.events(inc.id)]
            held = repairs_held(events)
            then = f"routine repair {held}" if held else "routine repair runs at its next schedule despite the incident"
            key = age_page_key(now, settings.paging.every_s)
            if page(
                settings, storage.incidents, cluster, inc.id, key, f"{overdue_summary(overdue)}; {then}", "watchdog"
            ):
                paged.append(inc.id)
        except Exception as e:  # noqa: BLE001 - a cluster or PostgreSQL away: the next pass tries again
            log.warning("repair age of %s not checked: %s", inc.cluster_id, e)
    return paged
