"""Prefect's own view of a dead host: the served runs' heartbeat events and the automation that marks a run
Crashed when they stop (Prefect's documented answer for a self-hosted server). The project's lease watchdog
takes the incident over first (seconds); this keeps the UI honest about runs whose process is gone, for every
flow. A suspended approval, a paused run and a retry back-off emit no heartbeats: their state events are
expected too, so they are never crashed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

AUTOMATION = "cassandra-recovery: crash flow runs whose heartbeat stopped"
# After a heartbeat, one of these within the window: another heartbeat, a terminal state, or a state that
# legitimately stops heartbeats.
EXPECTED = frozenset(
    f"prefect.flow-run.{s}"
    for s in ("heartbeat", "Completed", "Failed", "Cancelled", "Cancelling", "Crashed", "Suspended", "Paused",
              "AwaitingRetry", "Scheduled")
)  # fmt: skip


def zombie_automation(window_s: int) -> Any:
    return Automation(
        name=AUTOMATION,
        description="Marks a flow run Crashed when its heartbeats stop (host or process gone); managed by `serve`.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect=set(EXPECTED),
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=window_s),
        ),
        actions=[
            ChangeFlowRunState(
                name="Crashed",
                state=StateType.CRASHED,
                force=False,
                message=f"no heartbeat for {window_s}s: the process running this flow run is gone",
            )
        ],
    )


def ensure_zombie_automation(window_s: int) -> str:
    """Create the automation, or update it when its window changed; what was done."""

    wanted = zombie_automation(window_s)
    try:
        found: Any = Automation.read(name=AUTOMATION)
    except ValueError:
        wanted.create()
        return "created"
    if found.trigger == wanted.trigger and found.actions == wanted.actions and found.enabled:
        return "unchanged"
    wanted.id = found.id
    wanted.update()
    return "updated"
