"""The detector's hand-over of a confirmed failure through the incident launcher (launch.py, shared with the alert
receiver): open (or join) the cluster's incident, mitigate first when it opened it, then start the incident
deployment. Any failure is raised to the detector loop, which keeps the trigger and offers it again (PostgreSQL or
Prefect away must not lose an outage)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra_recovery.launch import IncidentLauncher
from cassandra_recovery.logic.detector import DetectorSnapshot, IncidentTrigger
from cassandra_recovery.settings import ClusterConfig


@dataclass
class TriggerHandover:
    launcher: IncidentLauncher  # opens or joins, mitigates first, starts the run (launch.py)
    cluster: ClusterConfig
    say: Callable[[str], None]
    snapshot: Callable[[], DetectorSnapshot]

    def __call__(self, trigger: IncidentTrigger, evidence: dict[str, Any]) -> None:
        doc = {
            "source": "detector",
            "kind": str(trigger.kind),
            "nodes": list(trigger.nodes),
            "reasons": list(trigger.reasons),
            "evidence": json.loads(json.dumps(evidence, default=str)),
            **wall_times(trigger, self.snapshot()),
        }
        incident, created = self.launcher.open_or_join(self.cluster.id, doc, actor="detector")
        self.say(f"{trigger.kind}: {', '.join(trigger.nodes)} -> incident {incident.id} "
                 f"({'new' if created else 'joined'})")  # fmt: skip
        key = f"{incident.id}:{trigger.kind}:{','.join(trigger.nodes)}:{trigger.at:.0f}"
        try:
            self.launcher.start(self.cluster.id, doc, key)
        except Exception as e:  # Prefect away: the incident is recorded; the trigger is kept and offered again
            self.say(f"could not start the incident deployment (kept, tried again): {e}")
            self.launcher.incidents.append_event(
                incident.id, "deployment_not_started", "detector", {"error": str(e)[:500]}
            )
            raise


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
