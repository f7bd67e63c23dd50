"""How the suspended incident run takes an answer (flows/approval_answer.py) against an in-memory timeline: the
request carries buttons naming it, a verified Slack answer wins, a Prefect UI answer is unverified or refused and
asked again under a new key (Prefect returns an old key's answer at once), and the expiry still ends the wait."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from cassandra_recovery.logic.slack_approvals import ANSWERED, REFUSED
from flows import approval_answer as aa

pytestmark = pytest.mark.area("incident")


class Suspended(Exception):
    """What Prefect's Pause does to the run: it stops here until someone resumes it."""


@dataclass
class World:
    policy: str = "accept"
    events: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # pause key -> the answer it was resumed with
    keys: list[str] = field(default_factory=list)
    replies: list[tuple[str, int | None]] = field(default_factory=list)

    def add(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append({"seq": len(self.events) + 1, "kind": kind, "data": data})

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    w.add("opened", {})

    def suspend(wait_for_input: Any, key: str) -> Any:
        w.keys.append(key)
        if key not in w.inputs:
            raise Suspended(key)
        return wait_for_input(**w.inputs[key])

    fakes: dict[str, Any] = {
        "get_run_logger": lambda: logging.getLogger("test"),
        "incident_events": lambda incident_id: list(w.events),
        "record_event": lambda incident_id, kind, data, lease: w.add(kind, dict(data)),
        "slack_reply": lambda c, i, text, lease, buttons_for=None: w.replies.append((text, buttons_for)),
        "prefect_ui_policy": lambda: w.policy,
        "suspend_flow_run": suspend,
    }
    for name, fake in fakes.items():
        monkeypatch.setattr(aa, name, fake)
    return w


def _ask(w: World) -> None:
    aa.request_approval("lab", "inc-1", {"action": "replace", "flow_run_id": "fr-1"}, "Approval needed", object())


def test_the_request_is_posted_with_buttons_naming_its_seq(world: World) -> None:
    _ask(world)
    assert world.kinds() == ["opened", "approval_requested"] and world.replies == [("Approval needed", 2)]
    with pytest.raises(Suspended):
        aa.wait_for_answer("lab", "inc-1", "replace-inc-1", object())


def test_a_verified_slack_answer_settles_the_wait(world: World) -> None:
    _ask(world)
    world.add(ANSWERED, {"approved": True, "approver": "slack T1/U1", "note": ""})
    world.inputs["replace-inc-1"] = {"approved": True, "approver": "slack T1/U1"}
    answer = aa.wait_for_answer("lab", "inc-1", "replace-inc-1", object())
    assert (answer.approved, answer.approver, answer.verified) == (True, "slack T1/U1", True)


def test_a_prefect_ui_answer_is_accepted_as_unverified_by_default(world: World) -> None:
    _ask(world)
    world.inputs["replace-inc-1"] = {"approved": True, "approver": "alice", "note": "go"}
    answer = aa.wait_for_answer("lab", "inc-1", "replace-inc-1", object())
    assert answer.decision() == {"approved": True, "approver": "alice (unverified: Prefect UI)", "note": "go",
                                 "verified": False}  # fmt: skip


def test_a_refused_prefect_ui_answer_is_recorded_and_the_run_asks_again_under_a_new_key(world: World) -> None:
    world.policy = "refuse"
    _ask(world)
    world.inputs["replace-inc-1"] = {"approved": True, "approver": "alice"}
    with pytest.raises(Suspended):
        aa.wait_for_answer("lab", "inc-1", "replace-inc-1", object())
    assert world.keys == ["replace-inc-1", "replace-inc-1-again-1"]
    assert world.kinds()[-1] == REFUSED and world.events[-1]["data"]["approver"] == "alice (unverified: Prefect UI)"
    assert "Approve or Reject button" in world.replies[-1][0]
    # the run resumed again, this time by a Slack click: the verified answer settles it
    world.add(ANSWERED, {"approved": False, "approver": "slack T1/U1", "note": ""})
    world.inputs["replace-inc-1-again-1"] = {"approved": False, "approver": "slack T1/U1"}
    answer = aa.wait_for_answer("lab", "inc-1", "replace-inc-1", object())
    assert (answer.approved, answer.verified) == (False, True)


def test_the_expiry_ends_the_wait_even_when_the_ui_is_refused(world: World) -> None:
    world.policy = "refuse"
    _ask(world)
    world.inputs["replace-inc-1"] = {"approved": False, "approver": aa.EXPIRED, "note": "late"}
    answer = aa.wait_for_answer("lab", "inc-1", "replace-inc-1", object())
    assert (answer.approved, answer.approver, answer.refused) == (False, aa.EXPIRED, False)


def test_the_question_says_where_to_answer(world: World) -> None:
    deadline = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
    assert "Prefect UI" in aa.how_to_answer(deadline)
    world.policy = "refuse"
    assert "Prefect UI" not in aa.how_to_answer(deadline) and "2026-12-07 18:00:00Z" in aa.how_to_answer(deadline)
