"""The detector's hand-over of a confirmed failure: open (or join) the cluster's incident, mitigate first when
it opened it, then start the incident deployment. Any failure is raised to the detector loop, which keeps the
trigger and offers it again (PostgreSQL or Prefect away must not lose an outage). Each step is idempotent on a
retry: the incident is joined, the deployment's idempotency key is the same."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra_recovery.logic.detector import DetectorSnapshot, IncidentTrigger
from cassandra_recovery.mitigation.apply import MitigationStores
from cassandra_recovery.settings import ClusterConfig

# Starts the incident deployment: (parameters, idempotency key).
StartRun = Callable[[dict[str, Any], str], None]


@dataclass
class TriggerHandover:
    storage: MitigationStores  # the process's Storage
    cluster: ClusterConfig
    say: Callable[[str], None]
    snapshot: Callable[[], DetectorSnapshot]
    start_run: StartRun | None = None  # None: record the incident only (--no-deployment)

    def __call__(self, trigger: IncidentTrigger, evidence: dict[str, Any]) -> None:
        doc = {
            "source": "detector",
            "kind": str(trigger.kind),
            "nodes": list(trigger.nodes),
            "reasons": list(trigger.reasons),
            "evidence": json.loads(json.dumps(evidence, default=str)),
            **wall_times(trigger, self.snapshot()),
        }
        store = self.storage.incidents
        incident, created = store.open_or_join(self.cluster.id, doc, actor="detector")
        self.say(f"{trigger.kind}: {', '.join(trigger.nodes)} -> incident {incident.id} "
                 f"({'new' if created else 'joined'})")  # fmt: skip
        if created:
            self._mitigate_first(incident.id, list(trigger.nodes))
        if self.start_run is None:
            return
        key = f"{incident.id}:{trigger.kind}:{','.join(trigger.nodes)}:{trigger.at:.0f}"
        try:
            self.start_run({"cluster_id": self.cluster.id, "trigger": doc}, key)
        except Exception as e:  # Prefect away: the incident is recorded; the trigger is kept and offered again
            self.say(f"could not start the incident deployment (kept, tried again): {e}")
            store.append_event(incident.id, "deployment_not_started", "detector", {"error": str(e)[:500]})
            raise

    def _mitigate_first(self, incident_id: str, nodes: list[str]) -> None:
        """Mitigation in the round that confirmed the failure, for the incident the detector just opened."""
        from cassandra_recovery.mitigation.apply import mitigate_opened_incident

        try:
            done = mitigate_opened_incident(self.storage, self.cluster, incident_id, nodes, "detector")
            self.say(f"incident {incident_id}: {done}")
        except Exception as e:  # PostgreSQL blip: the incident is open and its run applies the mitigation
            self.say(f"incident {incident_id}: mitigation not applied by the detector ({type(e).__name__}: {e}); "
                     "its run will")  # fmt: skip


def wall_times(trigger: IncidentTrigger, snap: DetectorSnapshot) -> dict[str, str]:
    """When the episode's first failure was seen and when it was confirmed, as wall-clock times for the
    post-mortem (the detector runs on the monotonic clock)."""
    offset = time.time() - time.monotonic()
    seen = (snap.nodes[n].suspected_at for n in trigger.nodes if n in snap.nodes)
    firsts = [at for at in seen if at]
    out = {"confirmed_at": datetime.fromtimestamp(trigger.at + offset, UTC).isoformat()}
    if firsts:
        out["suspected_at"] = datetime.fromtimestamp(min(firsts) + offset, UTC).isoformat()
    return out
