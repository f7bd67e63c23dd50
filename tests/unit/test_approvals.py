"""Approval requests on an incident's timeline: the newest one is open until a decision follows it."""

from __future__ import annotations

from typing import Any

import pytest

from cassandra_recovery.logic.approvals import PLAN, REPLACE, open_request, plan_approved

pytestmark = pytest.mark.area("incident")


def _ev(seq: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "data": data}


def test_a_request_is_open_until_a_decision_follows_it() -> None:
    asked = _ev(3, "approval_requested", action=PLAN, deadline="2026-12-06T15:00:00+00:00")
    assert open_request([], PLAN) is None
    assert open_request([_ev(1, "opened"), asked], PLAN) == asked["data"]
    assert open_request([asked, _ev(4, "approval_decided", approved=True)], PLAN) is None
    assert open_request([_ev(2, "approval_decided", approved=False), asked], PLAN) == asked["data"]  # an older one


def test_only_the_newest_request_counts_and_its_action_must_match() -> None:
    plan = _ev(3, "approval_requested", action=PLAN)
    decided = _ev(4, "approval_decided", approved=True)
    replace = _ev(9, "approval_requested", action=REPLACE, nodes=["127.0.0.4"])
    events = [plan, decided, replace]
    assert open_request(events, REPLACE) == replace["data"]
    assert open_request(events, PLAN) is None  # the plan was decided; the open request is a replacement
    legacy = _ev(5, "approval_requested", nodes=["127.0.0.4"])  # recorded before requests named their action
    assert open_request([legacy], REPLACE) == legacy["data"] and open_request([legacy], PLAN) is None


def test_one_approval_covers_the_plan_it_answered_until_a_new_plan_is_made() -> None:
    plan_set, asked = _ev(1, "plan_set"), _ev(2, "approval_requested", action=PLAN)
    yes, no = _ev(3, "approval_decided", approved=True), _ev(3, "approval_decided", approved=False)
    assert not plan_approved([plan_set, asked])  # asked, not answered
    assert plan_approved([plan_set, asked, yes])
    assert not plan_approved([plan_set, asked, no])
    assert not plan_approved([plan_set, asked, yes, _ev(4, "plan_set")])  # a re-assessment asks again
    replacement = [plan_set, _ev(2, "approval_requested", action=REPLACE), yes]
    assert not plan_approved(replacement)  # a replacement's approval is not the plan's
