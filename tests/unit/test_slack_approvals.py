"""Approvals from Slack, pure: button values, which click answers a request, and how the run settles an answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from cassandra_recovery.clients.slack import IncidentThread, SlackNotifier
from cassandra_recovery.clients.slack_interactive import approval_blocks
from cassandra_recovery.logic.slack_approvals import (
    ANSWERED,
    APPROVE,
    REFUSED,
    REJECT,
    Button,
    click_outcome,
    parse_button,
    refusals,
    settle,
    slack_approver,
    ui_approver,
    unapplied_answer,
)
from tests.fakes.slack_server import FakeSlackServer

pytestmark = pytest.mark.area("incident")
EXPIRED = "approval-timeout"


def _ev(seq: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "data": data}


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


def test_a_button_value_round_trips_and_foreign_values_are_not_ours() -> None:
    b = Button("inc-1", 7, approve=True)
    assert parse_button(b.action_id, b.value) == b
    assert parse_button(REJECT, b.value) == Button("inc-1", 7, approve=False)
    assert parse_button("other_action", b.value) is None
    for bad in ("not json", "[]", '{"incident": "inc-1", "seq": "7"}', '{"incident": 1, "seq": 7}', None, "x" * 201):
        assert parse_button(APPROVE, bad) is None, bad
    assert parse_button(APPROVE, '{"incident": "i", "seq": true}') is None  # a bool is not a seq


def test_the_first_click_on_the_open_request_answers_it() -> None:
    events = [_ev(1, "opened"), _ev(4, "approval_requested", action="replace", flow_run_id="fr-1")]
    click = click_outcome(events, 4)
    assert click.answers and click.why == "open" and click.request == {"action": "replace", "flow_run_id": "fr-1"}


def test_a_second_click_changes_nothing_and_names_who_answered_first() -> None:
    first = _ev(5, ANSWERED, approved=False, approver=slack_approver("T1", "U2"))
    events = [_ev(4, "approval_requested"), first, _ev(6, ANSWERED, approved=True, approver="slack T1/U3")]
    click = click_outcome(events, 4)
    assert (click.answers, click.why, click.decided_by, click.decided_approved) == (
        False, "decided", "slack T1/U2", False)  # fmt: skip


def test_a_request_the_run_decided_otherwise_is_decided_too() -> None:
    decided = _ev(5, "approval_decided", approved=False, approver=EXPIRED)
    click = click_outcome([_ev(4, "approval_requested"), decided], 4)
    assert (click.why, click.decided_by) == ("decided", EXPIRED)


def test_a_click_on_an_older_request_or_an_unknown_one_answers_nothing() -> None:
    events = [_ev(4, "approval_requested"), _ev(8, "approval_requested")]
    assert click_outcome(events, 4).why == "superseded"
    assert click_outcome(events, 8).answers
    assert click_outcome(events, 5).why == "unknown" and click_outcome([], 4).why == "unknown"
    # an answer to the newer request is not an answer to the older one
    assert click_outcome([*events, _ev(9, ANSWERED, approved=True, approver="a")], 4).why == "superseded"


def test_a_verified_slack_answer_wins_over_what_resumed_the_run() -> None:
    events = [_ev(4, "approval_requested"), _ev(5, ANSWERED, approved=True, approver="slack T1/U2", note="")]
    # the expiry resumed it after the receiver's own resume failed: the person's answer still counts
    s = settle(events, False, EXPIRED, "no decision", "refuse", {EXPIRED})
    assert (s.approved, s.approver, s.verified, s.refused) == (True, "slack T1/U2", True, False)
    assert s.decision() == {"approved": True, "approver": "slack T1/U2", "note": "", "verified": True}


def test_an_answer_to_an_earlier_request_does_not_settle_the_newest() -> None:
    events = [_ev(4, "approval_requested"), _ev(5, ANSWERED, approved=True, approver="slack T1/U2")]
    s = settle([*events, _ev(6, "approval_decided"), _ev(9, "approval_requested")], True, "bob", "", "accept", set())
    assert (s.approver, s.verified) == (ui_approver("bob"), False)


def test_a_prefect_ui_answer_is_unverified_when_accepted_and_refused_when_the_setting_says_so() -> None:
    events = [_ev(4, "approval_requested")]
    accepted = settle(events, True, " alice ", "ok", "accept", {EXPIRED})
    assert (accepted.approved, accepted.approver, accepted.verified, accepted.refused) == (
        True, "alice (unverified: Prefect UI)", False, False)  # fmt: skip
    assert settle(events, True, "alice", "", "refuse", {EXPIRED}).refused
    expired = settle(events, False, EXPIRED, "late", "refuse", {EXPIRED})  # the system's own answer stands
    assert (expired.approver, expired.refused) == (EXPIRED, False)


def test_refusals_count_since_the_newest_request_only() -> None:
    events = [_ev(1, "approval_requested"), _ev(2, REFUSED), _ev(3, "approval_decided"), _ev(4, "approval_requested")]
    assert refusals(events) == 0
    assert refusals([*events, _ev(5, REFUSED), _ev(6, REFUSED)]) == 2


def test_the_approval_message_with_buttons_is_accepted_by_the_strict_server(slack: FakeSlackServer) -> None:
    notifier = SlackNotifier(SecretStr(slack.token), slack.channel_id, base_url=slack.url, max_retries=0)
    root = notifier.open_thread("inc-1", "Cassandra incident", {"cluster": "lab"})
    assert root is not None
    text = "Approval needed: replace 127.0.0.4 <@channel>"
    assert notifier.reply(root, text, approval_blocks(text, "inc-1", 12)).ok
    posted = slack.replies(root.ts)[-1]
    buttons = posted["blocks"][1]["elements"]
    assert [parse_button(b["action_id"], b["value"]) for b in buttons] == [
        Button("inc-1", 12, True), Button("inc-1", 12, False)]  # fmt: skip
    assert "&lt;@channel&gt;" in posted["blocks"][0]["text"]["text"]  # the tool's text cannot ping


@pytest.mark.parametrize(
    "element",
    [
        {"type": "button", "text": {"type": "mrkdwn", "text": "Approve"}, "action_id": "a"},
        {"type": "button", "text": {"type": "plain_text", "text": "x" * 76}, "action_id": "a"},
        {"type": "button", "text": {"type": "plain_text", "text": "ok"}, "action_id": "a", "style": "green"},
        {"type": "button", "text": {"type": "plain_text", "text": "ok"}, "action_id": "a", "value": "v" * 2001},
        {"type": "select", "action_id": "a"},
    ],
)
def test_the_fake_server_refuses_buttons_slack_refuses(slack: FakeSlackServer, element: dict[str, Any]) -> None:
    notifier = SlackNotifier(SecretStr(slack.token), slack.channel_id, base_url=slack.url, max_retries=0)
    root = notifier.open_thread("inc-1", "t", {})
    assert root is not None
    res = notifier.reply(IncidentThread(root.channel, root.ts), "t", [{"type": "actions", "elements": [element]}])
    assert res.error == "invalid_blocks"


def test_an_answer_the_run_did_not_take_is_handed_to_the_resumer_after_a_grace() -> None:
    t0 = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)

    def ev(seq: int, kind: str, at_s: float = 0, **data: Any) -> dict[str, Any]:
        return {**_ev(seq, kind, **data), "at": t0 + timedelta(seconds=at_s)}

    asked, answered = ev(4, "approval_requested", flow_run_id="fr-1"), ev(5, ANSWERED, 1, approved=True, approver="a")
    assert unapplied_answer([asked, answered], "fr-1", t0 + timedelta(seconds=31), 30) == answered["data"]
    assert unapplied_answer([asked, answered], "fr-1", t0 + timedelta(seconds=5), 30) is None  # the receiver's turn
    assert unapplied_answer([asked, answered], "fr-2", t0 + timedelta(hours=1), 30) is None  # another run's request
    decided = ev(6, "approval_decided", 2, approved=True)
    assert unapplied_answer([asked, answered, decided], "fr-1", t0 + timedelta(hours=1), 30) is None  # taken
    assert unapplied_answer([asked], "fr-1", t0 + timedelta(hours=1), 30) is None
