"""The one function that wires the real receiver: PostgreSQL inbox and incidents, the engine's launcher, app,
deliverer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.clients.slack_interactive import Responder
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.intake.app import create_app
from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.ops import create_ops_app
from cassandra_recovery.intake.ports import LauncherUnavailable, StoreUnavailable
from cassandra_recovery.intake.rejected import DirRejectedBodies, default_rejected_dir
from cassandra_recovery.intake.service import Deliverer, Intake
from cassandra_recovery.intake.slack_actions import Resumer, SlackActions
from cassandra_recovery.intake.spool import PgSpool
from cassandra_recovery.launch import IncidentLauncher, incident_launcher
from cassandra_recovery.orchestrator import load_orchestrator
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import Storage
from cassandra_recovery.storage.migrate import DatabaseUnreachable, require_current
from cassandra_recovery.storage.names import CORE, SchemaNames

log = logging.getLogger(__name__)


class EngineLauncher:
    """The receiver's launcher port on the incident launcher (launch.py): the deployment, as the detector starts it."""

    def __init__(self, launcher: IncidentLauncher):
        self.launcher = launcher

    def launch(self, cluster_id: str, trigger: dict[str, Any], idempotency_key: str) -> str:
        try:
            run_id = self.launcher.start(cluster_id, trigger, idempotency_key)
        except Exception as e:  # unreachable server, missing deployment, auth: all mean "not started, retry"
            raise LauncherUnavailable(f"incident deployment not started: {type(e).__name__}: {str(e)[:300]}") from e
        if run_id is None:
            raise LauncherUnavailable("no orchestrator to start the incident deployment with")
        return run_id


class StoreIncidents:
    """The receiver's Incidents port on the incident launcher: open or join (mitigating what it opens)."""

    def __init__(self, launcher: IncidentLauncher):
        self.launcher = launcher
        self.store = launcher.incidents

    def open_or_join(self, cluster_id: str, trigger: dict[str, Any], actor: str) -> str:
        try:
            incident, _ = self.launcher.open_or_join(cluster_id, trigger, actor)
        except Exception as e:  # psycopg errors and pool timeouts: PostgreSQL away
            raise StoreUnavailable(f"incident store: {type(e).__name__}: {str(e)[:300]}") from e
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


class StoreTimeline:
    """The Slack actions' Timeline port on the incident store (no lease: a person's answer, like the CLI's)."""

    def __init__(self, store: IncidentStore):
        self.store = store

    def events(self, incident_id: str) -> list[dict[str, Any]]:
        return [{"seq": e.seq, "kind": e.kind, "data": e.data} for e in self.store.events(incident_id)]

    def record(self, incident_id: str, kind: str, actor: str, data: Mapping[str, Any]) -> None:
        self.store.append_event(incident_id, kind, actor, data)


def slack_actions(config: ReceiverConfig, store: IncidentStore, engine: Resumer) -> SlackActions | None:
    """The Approve/Reject handler when Slack interactivity is configured (a signing secret or an app token)."""
    if config.slack_signing_secret is None and config.slack_app_token is None:
        return None
    responder = Responder(config.slack_response_url_prefix)
    users = frozenset(config.slack_allowed_users)
    return SlackActions(StoreTimeline(store), engine, responder, users, config.slack_team_id)


@dataclass
class Receiver:
    app: FastAPI
    intake: Intake
    deliverer: Deliverer
    pool: ConnectionPool
    slack: SlackActions | None = None
    ops_app: FastAPI | None = None  # /healthz and /metrics for their own listener (ops_port)

    def close(self) -> None:
        self.deliverer.stop()
        self.intake.close()
        if self.slack is not None:
            self.slack.close()
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
    storage = Storage(settings, pool, names)
    launcher = incident_launcher(settings, storage, engine, "receiver")
    intake = Intake(
        spool, StoreIncidents(launcher), EngineLauncher(launcher), ReceiverMetrics(), config.inline_timeout_s,
        act_on=config.act_on,
    )  # fmt: skip
    deliverer = _VersionFirstDeliverer(intake, config.deliver_interval_s, check)

    def health() -> dict[str, Any]:
        return {"store": "ok" if deliverer.last_error is None else "unavailable", "deliverer_rounds": deliverer.rounds}

    deliverer.run_once()  # leftovers now when PostgreSQL is up; otherwise the thread keeps trying
    slack = slack_actions(config, launcher.incidents, engine)
    rejected = DirRejectedBodies(config.rejected_dir or default_rejected_dir(), config.rejected_max_files)
    app = create_app(
        config, intake, default, known_cluster=known.__contains__, health=health, slack=slack, rejected=rejected
    )
    return Receiver(app, intake, deliverer, pool, slack, create_ops_app(intake.metrics, health))


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
