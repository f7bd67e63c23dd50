"""The automation level per cluster: only `act` runs side effects; the others say what would have run."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.automation import held_back, may_act, proposed_steps

pytestmark = pytest.mark.area("incident")


def test_only_act_acts_and_an_unknown_level_is_refused() -> None:
    assert may_act("act")
    assert not may_act("observe") and not may_act("propose")
    with pytest.raises(ValueError, match="unknown automation level 'yolo'"):
        may_act("yolo")


def test_the_proposal_names_every_side_effect_in_order() -> None:
    steps = proposed_steps("repair", ["127.0.0.4"])
    assert steps == [
        "mitigate: degraded read policy, scheduled repairs paused",
        "repair the ranges of 127.0.0.4",
        "drain the write queue",
        "verify every replica (and fix differences)",
        "restore the normal policy",
    ]
    assert proposed_steps("wait_for_hints", [])[1] == "wait for the cluster to return and watch hint replay finish"
    assert proposed_steps("no_action", [], reverify=True)[0] == "watch every hint delivered"
    why = held_back("observe", "prod-eu", steps[:2])
    assert why == (
        "automation level observe on prod-eu: proposed, not run: mitigate: degraded read policy, scheduled repairs"
        " paused; repair the ranges of 127.0.0.4"
    )


def test_a_proposal_refused_or_expired_escalates_with_who_and_what() -> None:
    from flows.proposal import refusal
    from flows.replacement import EXPIRED, ReplacementApproval

    steps = ["mitigate: degraded read policy, scheduled repairs paused", "repair the ranges of 127.0.0.4"]
    rejected = ReplacementApproval(approved=False, approver="alice", note="not during the sale")
    assert refusal(rejected, steps) == f"proposed plan rejected by alice: {steps[0]}; {steps[1]}"
    expired = ReplacementApproval(approved=False, approver=EXPIRED, note="no decision before 15:00")
    assert refusal(expired, steps[:1]).startswith("proposed plan expired (nobody decided): mitigate")
