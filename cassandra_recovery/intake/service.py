"""The receiver's behaviour without HTTP: store first, then deliver inline; deliver directly when the store is away."""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any

from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.payload import Alert
from cassandra_recovery.intake.ports import (
    AlertRejected,
    Incidents,
    Launcher,
    LauncherUnavailable,
    Outcome,
    Spool,
    SpoolItem,
    StoreBusy,
    StoreUnavailable,
)

log = logging.getLogger(__name__)
ACTOR = "alert-receiver"


@dataclass(frozen=True)
class AlertResult:
    """Per alert: duplicate | delivered | recorded | spooled | direct | failed | rejected (the inbox refused its
    data: a retry cannot help)."""

    result: str
    cluster: str
    status: str
    fingerprint: str
    dedup_key: str
    incident_id: str | None = None
    flow_run_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class IngestResult:
    alerts: list[AlertResult]
    store: str  # ok | unavailable | busy (every pooled connection in use)

    @property
    def http_status(self) -> int:
        # 503 only when some alert was neither stored nor delivered: the sender must retry it. 422 when the
        # inbox refused an alert's data: a retry would be refused again (the body is kept for inspection).
        if any(a.result == "failed" for a in self.alerts):
            return 503
        return 422 if any(a.result == "rejected" for a in self.alerts) else 200

    @property
    def rejected(self) -> bool:
        return any(a.result == "rejected" for a in self.alerts)

    def as_dict(self) -> dict[str, Any]:
        return {"store": self.store, "alerts": [asdict(a) for a in self.alerts]}


class Intake:
    def __init__(
        self,
        spool: Spool,
        incidents: Incidents,
        launcher: Launcher,
        metrics: ReceiverMetrics,
        inline_timeout_s: float = 5.0,
        workers: int = 4,
        act_on: Sequence[str] = ("*",),
    ) -> None:
        self.spool, self.incidents, self.launcher, self.metrics = spool, incidents, launcher, metrics
        self.act_on = tuple(act_on)
        self.inline_timeout_s = inline_timeout_s
        # Deliveries run here so a request can stop waiting while the delivery finishes in the background.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="intake-deliver")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def deliver(self, item: SpoolItem) -> Outcome:
        """Resolved: an event on the open incident. Firing: open or join the incident (once per item, even over
        retries), then start the incident deployment under the episode's idempotency key."""
        try:
            if item.alert_status == "resolved" or not self.acts_on(item):
                return Outcome(ok=True, incident_id=self.incidents.note_resolved(item.cluster_id, item.doc, ACTOR))
            incident = item.incident_id or self.incidents.open_or_join(item.cluster_id, item.doc, ACTOR)
        except StoreUnavailable as e:
            return Outcome(ok=False, error=str(e))
        try:
            run = self.launcher.launch(item.cluster_id, {**item.doc, "incident_id": incident}, item.launch_key)
        except LauncherUnavailable as e:
            return Outcome(ok=False, incident_id=incident, error=str(e))
        return Outcome(ok=True, incident_id=incident, flow_run_id=run)

    def acts_on(self, item: SpoolItem) -> bool:
        """Whether this firing alert starts the incident flow (its alertname matches `act_on`)."""
        name = str(item.doc.get("alertname") or "")
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.act_on)

    def _wait(self, fn: Any, *args: Any) -> Any:
        """fn(*args) in the delivery pool; TimeoutError after inline_timeout_s (the call goes on)."""
        return self._pool.submit(fn, *args).result(timeout=self.inline_timeout_s)

    def ingest(self, alerts: list[Alert]) -> IngestResult:
        results: list[AlertResult] = []
        store = "ok"
        for alert in alerts:
            item = SpoolItem.of(alert)
            base = {"cluster": alert.cluster_id, "status": alert.status, "fingerprint": alert.fingerprint}
            base["dedup_key"] = item.dedup_key
            try:
                if store != "ok":  # one pool timeout per request is enough to know PostgreSQL is away
                    raise StoreUnavailable(store)
                inserted = self.spool.put(item, hold_s=self.inline_timeout_s * 2)
            except AlertRejected as e:
                log.warning("alert %s refused by the inbox: %s", item.dedup_key, e)
                results.append(AlertResult("rejected", **base, detail=str(e)))
                continue
            except StoreUnavailable as e:
                if store == "ok":
                    log.warning("alert inbox %s (%s); delivering directly", _condition(e), e)
                    store = _condition(e)
                results.append(AlertResult(**base, **self._direct(item)))
                continue
            if not inserted:
                self.metrics.duplicates.labels(alert.source).inc()
                results.append(AlertResult("duplicate", **base))
                continue
            self.metrics.accepted.labels(alert.source).inc()
            results.append(AlertResult(**base, **self._inline(item)))
        _note_store(self.metrics, store)
        return IngestResult(results, store)

    def _inline(self, item: SpoolItem) -> dict[str, Any]:
        try:
            outcome: Outcome | None = self._wait(self.spool.deliver_one, item.dedup_key, self.deliver)
        except FutureTimeout:
            self.metrics.spooled.inc()
            return {"result": "spooled", "detail": "delivery still running; the inbox keeps the alert"}
        except StoreUnavailable as e:  # stored, then PostgreSQL went away: the deliverer will pick it up
            self.metrics.spooled.inc()
            return {"result": "spooled", "detail": str(e)}
        if outcome is None:  # another deliverer holds it or has delivered it already
            return {"result": "spooled", "detail": "being delivered by the deliverer"}
        ids = {"incident_id": outcome.incident_id, "flow_run_id": outcome.flow_run_id}
        if outcome.ok:
            self.metrics.delivered.labels("inline").inc()
            return {"result": "delivered" if outcome.flow_run_id else "recorded", **ids}
        self.metrics.spooled.inc()
        return {"result": "spooled", "detail": outcome.error, **ids}

    def _direct(self, item: SpoolItem) -> dict[str, Any]:
        """PostgreSQL away: a firing alert goes straight to Prefect, under the same key as the spooled path, so a
        later re-send stored in PostgreSQL starts no second run. A resolved one can only be recorded: failed."""
        if item.alert_status == "resolved" or not self.acts_on(item):
            return {"result": "failed", "detail": "the alert inbox is unavailable; alerts only recorded need it"}
        try:
            run = self._wait(self.launcher.launch, item.cluster_id, item.doc, item.launch_key)
        except (LauncherUnavailable, FutureTimeout) as e:
            return {"result": "failed", "detail": f"inbox and launcher both unavailable: {str(e) or 'timeout'}"}
        self.metrics.delivered.labels("direct").inc()
        return {"result": "direct", "flow_run_id": run, "detail": "inbox unavailable: started directly, not stored"}

    def deliver_due(self, limit: int = 50) -> list[Outcome]:
        """One round of the deliverer: pending alerts whose retry time has come; updates the pending gauge."""
        outcomes = self.spool.deliver_due(self.deliver, limit)
        ok = sum(1 for o in outcomes if o.ok)
        if ok:
            self.metrics.delivered.labels("deliverer").inc(ok)
        self.metrics.pending.set(self.spool.pending_count())
        return outcomes


def _condition(e: StoreUnavailable) -> str:
    return "busy" if isinstance(e, StoreBusy) else "unavailable"


def _note_store(metrics: ReceiverMetrics, store: str) -> None:
    """store_up says whether PostgreSQL answers; an exhausted pool is its own counter, not a store outage."""
    if store == "busy":
        metrics.store_busy.inc()
    else:
        metrics.store_up.set(1.0 if store == "ok" else 0.0)


class Deliverer:
    """Background thread: a round every `interval_s` until stopped; PostgreSQL outages are logged, not fatal."""

    def __init__(self, intake: Intake, interval_s: float) -> None:
        self.intake, self.interval_s = intake, interval_s
        self.stop_event = threading.Event()
        self.rounds = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="intake-deliverer", daemon=True)

    def run_once(self) -> list[Outcome]:
        try:
            outcomes = self.intake.deliver_due()
            self.last_error = None
            self.intake.metrics.store_up.set(1.0)
        except StoreUnavailable as e:
            self.last_error = None if isinstance(e, StoreBusy) else str(e)
            _note_store(self.intake.metrics, _condition(e))
            log.warning("deliverer: %s", e)
            outcomes = []
        self.rounds += 1
        return outcomes

    def _run(self) -> None:
        while not self.stop_event.is_set():
            self.run_once()
            self.stop_event.wait(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        self._thread.join(timeout=timeout_s)
