"""The runbook against what the incident flow did on the real lab: replay each captured timeline and, at every
step the flow took, ask `decide()` with the facts of the timeline up to that step. Both must name the same step:
the pure runbook is the flow's specification (the incident loop executes it), not a second opinion. These
timelines were captured before the loop: they pin the runbook to the behaviour the real-lab tests proved."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cassandra_recovery.logic.incident_facts import read_timeline
from cassandra_recovery.logic.runbook import decide
from cassandra_recovery.logic.runbook_model import (
    AutomationLevel,
    Controls,
    Observation,
    RunFacts,
    RunStatus,
    Step,
)

pytestmark = pytest.mark.area("incident")

TIMELINES = Path(__file__).resolve().parents[1] / "fixtures" / "timelines"
ADDRESSES = {"node1": "127.0.0.2", "node2": "127.0.0.3", "node3": "127.0.0.4"}
LEVELS = {"propose_approved": AutomationLevel.PROPOSE}
# The event that shows the flow took a step (its start, or its only record).
STEP_OF = {
    "mitigation_started": Step.MITIGATE,
    "plan_set": Step.ASSESS,
    "healed": Step.WAIT_FOR_HEAL,
    "hints_drained": Step.WATCH_HINTS,
    "repaired": Step.REPAIR,
    "verification_started": Step.VERIFY,
    "fix_started": Step.FIX_DIVERGENCE,
    "restore_started": Step.RESTORE_NORMAL,
    "follow_up_scheduled": Step.SCHEDULE_FOLLOW_UP,
}


def _taken(e: dict[str, Any], mitigated: bool) -> Step | None:
    if e["kind"] == "restore_started" and not mitigated:
        return None  # the flow's closing restore when no mitigation is in force changes nothing: not a step
    if e["kind"] == "transition" and e["data"]["to"] in ("resolved", "escalated"):
        return Step.RESOLVE if e["data"]["to"] == "resolved" else Step.ESCALATE
    if e["kind"] == "approval_requested":
        return Step.MITIGATE if e["data"].get("action") == "plan" else Step.REPLACE_ASK_APPROVAL
    return STEP_OF.get(e["kind"])


def _state_before(events: list[dict[str, Any]]) -> str:
    moves = [e["data"]["to"] for e in events if e["kind"] == "transition"]
    return moves[-1] if moves else "detected"


def _steps(name: str) -> list[tuple[int, Step, Step, str]]:
    """(seq, step the flow took, step the runbook decides, its reason) at every step of the captured run."""
    events = json.loads((TIMELINES / f"{name}.json").read_text())["events"]
    # The run under test starts at its lease; what came before it set the incident up (a monitored incident).
    start = max(i for i, e in enumerate(events) if e["kind"] == "lease_acquired" and e["data"]["reason"] == "free")
    controls = Controls(level=LEVELS.get(name, AutomationLevel.ACT), follow_up_s=0)
    out = []
    for i, e in enumerate(events):
        prefix = events[:i]
        # A trigger that landed after the run's last write, just before this step, was not read yet when the run
        # chose it (the next decision sees it: the monitored test's flap lands as the verification starts).
        while prefix and prefix[-1]["kind"] == "joined" and prefix[-1]["actor"] != e["actor"]:
            prefix = prefix[:-1]
        view = read_timeline(_state_before(prefix), prefix, ADDRESSES, RunFacts(RunStatus.SELF))
        taken = _taken(e, view.facts.mitigated)
        if i <= start or taken is None:
            continue
        d = decide(view.facts, Observation(datetime.fromisoformat(e["at"]), view.down_now, view.plan), controls)
        out.append((e["seq"], taken, d.step, d.reason))
    return out


# Captured from the flow as it is. `monitored_detector_trigger_node_back` (kept for the timeline readers) is from
# before the flow mitigated first for a node a trigger reported and that was back already, as the runbook does.
CURRENT = [
    "frozen_node_mitigated_first",
    "monitored_detector_trigger_node_back_flap",  # node2 reported down while the first verification ran
    "monitored_reverify_nothing_down",
    "propose_approved",
]


@pytest.mark.parametrize("name", CURRENT)
def test_the_runbook_decides_every_step_the_flow_took(name: str) -> None:
    steps = _steps(name)
    assert steps, "no step found in the captured timeline"
    disagree = [s for s in steps if s[1] is not s[2]]
    assert not disagree, "\n".join(f"seq {q}: flow {t}, runbook {d} ({why})" for q, t, d, why in disagree)
