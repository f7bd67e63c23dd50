"""The one function that wires the real receiver: PostgreSQL inbox and incidents, the engine's launcher, app,
deliverer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.intake.app import create_app
from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.ports import LauncherUnavailable, StoreUnavailable
from cassandra_recovery.intake.service import Deliverer, Intake
from cassandra_recovery.intake.spool import PgSpool
from cassandra_recovery.mitigation.apply import mitigate_opened_incident
from cassandra_recovery.orchestrator import Orchestrator, load_orchestrator
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import Storage
from cassandra_recovery.storage.migrate import DatabaseUnreachable, require_current
from cassandra_recovery.storage.names import CORE, SchemaNames

log = logging.getLogger(__name__)


class EngineLauncher:
    """The receiver's launcher port on the orchestrator: the incident deployment, as the detector starts it."""

    def __init__(self, engine: Orchestrator):
        self.engine = engine

    def launch(self, cluster_id: str, trigger: dict[str, Any], idempotency_key: str) -> str:
        try:
            run = self.engine.start_incident({"cluster_id": cluster_id, "trigger": trigger}, idempotency_key)
        except Exception as e:  # unreachable server, missing deployment, auth: all mean "not started, retry"
            raise LauncherUnavailable(f"incident deployment not started: {type(e).__name__}: {str(e)[:300]}") from e
        return run.id


class StoreIncidents:
    """The IncidentStore seen through the receiver's Incidents port."""

    def __init__(self, store: IncidentStore, on_opened: Callable[[str, str, dict[str, Any]], None] | None = None):
        self.store = store
        self.on_opened = on_opened  # called with (cluster, incident, trigger) for an incident this call opened

    def open_or_join(self, cluster_id: str, trigger: dict[str, Any], actor: str) -> str:
        try:
            incident, created = self.store.open_or_join(cluster_id, trigger, actor)
        except Exception as e:  # psycopg errors and pool timeouts: PostgreSQL away
            raise StoreUnavailable(f"incident store: {type(e).__name__}: {str(e)[:300]}") from e
        if created and self.on_opened is not None:
            self.on_opened(cluster_id, incident.id, trigger)
        return incident.id

    def note_resolved(self, cluster_id: str, doc: dict[str, Any], actor: str) -> str | None:
        try:
            incident = self.store.open_for(cluster_id)
            if incident is None:
                return None
            kind = "alert_resolved" if doc.get("status") == "resolved" else "alert_recorded"  # not an outage alert
            self.store.append_event(incident.id, kind, actor, doc)
        except Exception as e:
            raise StoreUnavailable(f"incident store: {type(e).__name__}: {str(e)[:300]}") from e
        return incident.id


@dataclass
class Receiver:
    app: FastAPI
    intake: Intake
    deliverer: Deliverer
    pool: ConnectionPool

    def close(self) -> None:
        self.deliverer.stop()
        self.intake.close()
        self.pool.close()


def build_receiver(settings: Settings, config: ReceiverConfig, cluster: str | None = None) -> Receiver:
    """Everything real. SchemaNotCurrent when PostgreSQL answers with an old schema. The pool is opened without
    waiting, so the receiver starts (and delivers directly) while PostgreSQL is down; the deliverer then checks
    the schema version before its first round."""
    names = SchemaNames.from_settings(settings, inbox=config.table)
    check = VersionCheck(settings.postgres_conninfo(), names)
    try:
        check()
    except DatabaseUnreachable as e:  # PostgreSQL away: the deliverer checks once it is back
        log.warning("PostgreSQL unreachable at start (%s); the schema version is checked when it answers", e)
    engine = load_orchestrator(settings)
    default = settings.cluster(cluster or config.default_cluster).id
    known = settings.cluster_ids()
    # 12: a delivery holds its inbox row and needs a second connection for the incident.
    pool = make_pool(settings, max_size=12, open_wait_s=None, name="alert-receiver")
    spool = PgSpool(pool, names.inbox, config.retry_base_s, config.retry_max_s, config.max_attempts)
    store = IncidentStore(pool, names.incident_prefix)
    metrics = ReceiverMetrics()
    storage = Storage(settings, pool, names)

    def mitigate_first(cluster_id: str, incident_id: str, trigger: dict[str, Any]) -> None:
        """The receiver confirms a failure when it opens the incident: mitigation in the same request."""
        nodes = [str(n) for n in trigger.get("nodes") or []]
        try:
            done = mitigate_opened_incident(storage, settings.cluster(cluster_id), incident_id, nodes, "receiver")
            log.info("incident %s: %s", incident_id, done)
        except Exception as e:  # the incident is open: its run applies the mitigation itself
            log.warning(
                "incident %s: mitigation not applied by the receiver (%s: %s)", incident_id, type(e).__name__, e
            )

    intake = Intake(
        spool,
        StoreIncidents(store, on_opened=mitigate_first),
        EngineLauncher(engine),
        metrics,
        config.inline_timeout_s,
        act_on=config.act_on,
    )
    deliverer = _VersionFirstDeliverer(intake, config.deliver_interval_s, check)

    def health() -> dict[str, Any]:
        return {"store": "ok" if deliverer.last_error is None else "unavailable", "deliverer_rounds": deliverer.rounds}

    deliverer.run_once()  # leftovers now when PostgreSQL is up; otherwise the thread keeps trying
    app = create_app(config, intake, default, known_cluster=known.__contains__, health=health)
    return Receiver(app, intake, deliverer, pool)


@dataclass(frozen=True)
class VersionCheck:
    """The receiver's tables (core track) at this code's migration, else SchemaNotCurrent."""

    conninfo: str
    names: SchemaNames

    def __call__(self) -> None:
        require_current(self.conninfo, self.names, tracks=(CORE,))


class _VersionFirstDeliverer(Deliverer):
    """Checks the schema version before its first round, and again after a failed check (never creates it)."""

    def __init__(self, intake: Intake, interval_s: float, check: VersionCheck) -> None:
        super().__init__(intake, interval_s)
        self.check, self.schema_ready = check, False

    def run_once(self) -> Any:
        if not self.schema_ready:
            try:
                self.check()
                self.schema_ready = True
            except Exception as e:  # PostgreSQL away, or SchemaNotCurrent (its message names `db upgrade`)
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("alert inbox not ready: %s", self.last_error)
                return []
        return super().run_once()
