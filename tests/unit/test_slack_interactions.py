"""Slack's interactivity endpoint with signed payloads in Slack's format: accepted clicks resume the run after the
answer is on the timeline; bad or stale signatures, users not allowed and replayed clicks change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from cassandra_recovery.clients.slack_interactive import Responder, signature_valid
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.intake.app import create_app
from cassandra_recovery.intake.config import ReceiverConfig, load_receiver_config
from cassandra_recovery.intake.memory import MemoryIncidents, MemorySpool, MemoryTimeline, RecordingLauncher
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.service import Intake
from cassandra_recovery.intake.slack_actions import SlackActions
from cassandra_recovery.intake.slack_socket import interactive_listener
from cassandra_recovery.intake.wiring import slack_actions
from cassandra_recovery.logic.slack_approvals import ANSWERED, Button
from tests.fakes.slack_server import FakeSlackServer

pytestmark = pytest.mark.area("intake")

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example format (32 hex-ish chars)
TEAM, ALICE, MALLORY = "T0TEAM", "U0ALICE", "U0MALLORY"
NOW = 1_765_000_000.0


class RecordingResumer:
    """The orchestrator's resume, remembered; `fail=True`: the server is away."""

    def __init__(self) -> None:
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    def resume_run(self, run_id: str, run_input: Mapping[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("prefect away")
        self.resumed.append((run_id, dict(run_input)))


@dataclass
class Harness:
    client: TestClient
    timeline: MemoryTimeline
    resumer: RecordingResumer
    slack: FakeSlackServer
    actions: SlackActions
    pending: list[Any]

    def click(self, user: str = ALICE, approve: bool = True, seq: int = 2, team: str = TEAM, **kw: Any) -> Response:
        b = Button("inc-1", seq, approve)
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": team},
            "team": {"id": team, "domain": "acme"},
            "api_app_id": "A0APP",
            "container": {"type": "message", "message_ts": "1765000000.000100", "channel_id": "C0INCIDENTS"},
            "channel": {"id": "C0INCIDENTS", "name": "incidents"},
            "message": {"ts": "1765000000.000100", "text": "Approval needed"},
            "response_url": kw.pop("response_url", self.slack.response_url_root + "T0TEAM/1/abc"),
            "trigger_id": "1.2.3",
            "actions": [
                {
                    "type": "button",
                    "action_id": b.action_id,
                    "block_id": f"cr_approval_{seq}",
                    "value": b.value,
                    "action_ts": "1765000001.000200",
                }
            ],  # fmt: skip
        }
        body = kw.pop("body", urlencode({"payload": json.dumps(payload)}).encode())
        ts = kw.pop("ts", str(int(NOW)))
        signed = "sig" not in kw
        sig = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body) if signed else kw["sig"]
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": sig or ""}  # fmt: skip
        return self.client.post("/slack/interactions", content=body, headers=headers)

    def settle(self) -> list[str]:
        """What each background job did, once done (the endpoint answered before them)."""
        return [f.result(timeout=30) for f in self.pending if f is not None]


@pytest.fixture
def h() -> Iterator[Harness]:
    config = ReceiverConfig(
        slack_signing_secret=SecretStr(SIGNING_SECRET), slack_allowed_users=[ALICE], slack_team_id=TEAM
    )
    spool = MemorySpool(time.monotonic)
    intake = Intake(spool, MemoryIncidents(), RecordingLauncher(), ReceiverMetrics(), 1.0)
    timeline, resumer = MemoryTimeline(), RecordingResumer()
    timeline.record("inc-1", "opened", "receiver", {})
    timeline.record("inc-1", "approval_requested", "pipeline", {"action": "replace", "flow_run_id": "fr-1"})
    with FakeSlackServer() as slack:
        actions = SlackActions(timeline, resumer, Responder(slack.response_url_root), frozenset([ALICE]), TEAM)
        pending: list[Any] = []
        handle = actions.handle
        actions.handle = lambda payload: pending.append(handle(payload)) or pending[-1]  # type: ignore[method-assign]
        app = create_app(config, intake, "lab", wall_clock=lambda: NOW, slack=actions)
        with TestClient(app) as client:
            yield Harness(client, timeline, resumer, slack, actions, pending)
        actions.close()


def _answers(h: Harness) -> list[dict[str, Any]]:
    return [e for e in h.timeline.events("inc-1") if e["kind"] == ANSWERED]


def test_an_allowed_click_is_recorded_verified_then_resumes_the_run_and_replaces_the_message(h: Harness) -> None:
    r = h.click()
    assert r.status_code == 200 and r.content == b""  # the acknowledgement, before any work
    assert h.settle() == ["resumed"]
    [answer] = _answers(h)
    assert answer["actor"] == "slack T0TEAM/U0ALICE"
    assert answer["data"]["verified"] is True and answer["data"]["approved"] is True
    assert (answer["data"]["team_id"], answer["data"]["user_id"], answer["data"]["request_seq"]) == (TEAM, ALICE, 2)
    assert h.resumer.resumed == [("fr-1", {"approved": True, "approver": "slack T0TEAM/U0ALICE", "note": ""})]
    [msg] = h.slack.responses
    assert msg["replace_original"] is True and msg["text"] == "Approval needed\n*Approved by <@U0ALICE>.*"


def test_a_reject_is_recorded_and_resumes_with_approved_false(h: Harness) -> None:
    h.click(approve=False)
    assert h.settle() == ["resumed"]
    assert _answers(h)[0]["data"]["approved"] is False and h.resumer.resumed[0][1]["approved"] is False
    assert h.slack.responses[0]["text"].endswith("*Rejected by <@U0ALICE>.*")


@pytest.mark.parametrize(
    "change",
    [
        {"sig": "v0=" + "0" * 64},  # wrong signature
        {"sig": None},  # no signature
        {"ts": str(int(NOW) - 301)},  # stale: older than Slack's 5 minutes
        {"ts": str(int(NOW) + 301)},  # from the future, as far
        {"ts": "soon", "sig": "v0=abc"},  # not a number: 401, not a 500
        {"ts": ""},
    ],
)
def test_unsigned_stale_or_malformed_requests_are_refused(h: Harness, change: dict[str, Any]) -> None:
    r = h.click(**change)
    assert r.status_code == 401
    assert h.settle() == [] and _answers(h) == [] and h.resumer.resumed == []


def test_a_body_changed_after_signing_is_refused(h: Harness) -> None:
    body = urlencode({"payload": json.dumps({"type": "block_actions"})}).encode()
    sig = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=str(int(NOW)), body=body)
    assert h.click(body=body + b"&x=1", sig=sig).status_code == 401


def test_a_user_not_in_the_allow_list_is_told_so_and_nothing_is_recorded(h: Harness) -> None:
    assert h.click(user=MALLORY).status_code == 200
    assert h.settle() == ["refused"]
    assert _answers(h) == [] and h.resumer.resumed == []
    [msg] = h.slack.responses
    assert msg["replace_original"] is False and msg["response_type"] == "ephemeral" and "not allowed" in msg["text"]


def test_an_allowed_user_id_from_another_workspace_is_refused(h: Harness) -> None:
    h.click(team="T0OTHER")
    assert h.settle() == ["refused"] and _answers(h) == []


def test_a_double_click_or_replayed_click_changes_nothing_and_says_who_decided(h: Harness) -> None:
    h.click(approve=True)
    h.click(approve=False)  # a second click (or Slack's retry of the first): the first answer stands
    assert sorted(h.settle()) == ["already_decided", "resumed"]
    assert len(_answers(h)) == 1 and len(h.resumer.resumed) == 1
    said = [m["text"] for m in h.slack.responses if m["replace_original"] is False]
    assert said == ["Already approved by slack T0TEAM/U0ALICE; nothing changed."]


def test_who_decided_in_the_prefect_ui_is_escaped_when_a_late_click_is_told(h: Harness) -> None:
    decided = {"approved": True, "approver": "<!channel> (unverified: Prefect UI)"}
    h.timeline.record("inc-1", "approval_decided", "pipeline", decided)
    h.click()
    assert h.settle() == ["already_decided"] and h.resumer.resumed == []
    assert (
        h.slack.responses[-1]["text"]
        == "Already approved by &lt;!channel&gt; (unverified: Prefect UI); nothing changed."
    )


def test_a_click_on_a_superseded_request_answers_nothing(h: Harness) -> None:
    h.timeline.record("inc-1", "approval_decided", "pipeline", {"approved": False, "approver": "approval-timeout"})
    h.timeline.record("inc-1", "approval_requested", "pipeline", {"action": "plan", "flow_run_id": "fr-2"})
    h.click(seq=2)
    assert h.settle() == ["already_decided"]
    h.pending.clear()
    h.click(seq=3)  # the `approval_decided` event's seq: not a request
    assert h.settle() == ["unknown"] and _answers(h) == []
    assert h.slack.responses[-1]["text"] == "This approval request is unknown here."


def test_a_failed_resume_keeps_the_answer_on_the_timeline(h: Harness) -> None:
    h.resumer.fail = True
    h.click()
    assert h.settle() == ["recorded"]
    assert len(_answers(h)) == 1  # the run takes it when it next runs (the resumer of answered approvals)
    assert "could not be resumed" in h.slack.responses[0]["text"]


def test_a_store_away_records_nothing_and_asks_to_click_again(h: Harness) -> None:
    h.timeline.up = False
    h.click()
    assert h.settle() == ["unrecorded"] and h.resumer.resumed == []


def test_foreign_interactions_and_malformed_bodies(h: Harness) -> None:
    other = urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": ALICE}})}).encode()
    assert h.click(body=other).status_code == 200 and h.settle() == []
    assert h.click(body=b"payload=%7Bnot-json").status_code == 400
    assert h.click(body=b"\xff\xfe", sig="v0=" + "0" * 64).status_code == 401  # not UTF-8: never Slack's body


def test_response_urls_outside_slack_are_never_called(h: Harness) -> None:
    h.click(response_url="http://169.254.169.254/latest/")
    assert h.settle() == ["resumed"] and h.slack.responses == []


def test_the_endpoint_is_in_the_openapi_description(h: Harness) -> None:
    spec = h.client.get("/openapi.json").json()
    assert "post" in spec["paths"]["/slack/interactions"] and "/alerts/generic" in spec["paths"]


def test_the_endpoint_exists_only_with_a_signing_secret() -> None:
    intake = Intake(MemorySpool(time.monotonic), MemoryIncidents(), RecordingLauncher(), ReceiverMetrics(), 1.0)
    with TestClient(create_app(ReceiverConfig(), intake, "lab")) as client:
        assert client.post("/slack/interactions", content=b"payload=%7B%7D").status_code == 404


def test_signature_valid_is_slack_sdks_check_with_a_five_minute_window() -> None:
    body, ts = b"payload=%7B%7D", str(int(NOW))
    sig = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    assert signature_valid(SIGNING_SECRET, body, ts, sig, lambda: NOW + 300)
    assert not signature_valid(SIGNING_SECRET, body, ts, sig, lambda: NOW + 301)
    assert not signature_valid("another-secret", body, ts, sig, lambda: NOW)
    assert not signature_valid(SIGNING_SECRET, body, "-1", sig, lambda: NOW)


def test_slack_settings_from_the_environment_with_the_secret_in_a_0600_file(tmp_path: Path) -> None:
    secret = tmp_path / "slack-signing-secret"
    secret.write_text(SIGNING_SECRET + "\n")
    secret.chmod(0o600)
    env = {"CASSANDRA_RECOVERY_RECEIVER__SLACK_SIGNING_SECRET_FILE": str(secret),
           "CASSANDRA_RECOVERY_RECEIVER__SLACK_ALLOWED_USERS": "U0ALICE, U0BOB"}  # fmt: skip
    config = load_receiver_config(env)
    assert config.slack_signing_secret is not None and config.slack_signing_secret.get_secret_value() == SIGNING_SECRET
    assert config.slack_allowed_users == ["U0ALICE", "U0BOB"] and SIGNING_SECRET not in repr(config)
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        load_receiver_config(env)


def test_a_signing_secret_without_an_allow_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="slack_allowed_users") as e:
        load_receiver_config({"CASSANDRA_RECOVERY_RECEIVER__SLACK_SIGNING_SECRET": SIGNING_SECRET})
    assert SIGNING_SECRET not in str(e.value)


class RecordingSocket:
    """The part of slack-sdk's Socket Mode client a listener uses: acknowledgements."""

    def __init__(self) -> None:
        self.acked: list[str] = []

    def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.acked.append(response.envelope_id)


def test_socket_mode_acks_every_envelope_and_hands_clicks_to_the_same_handler(h: Harness) -> None:
    listener = interactive_listener(h.actions)
    socket = RecordingSocket()
    b = Button("inc-1", 2, approve=True)
    action = {"action_id": b.action_id, "value": b.value}
    click = {"type": "block_actions", "user": {"id": ALICE}, "team": {"id": TEAM},
             "response_url": h.slack.response_url_root + "x", "actions": [action]}  # fmt: skip
    listener(socket, SocketModeRequest(type="events_api", envelope_id="e1", payload={"event": {}}))  # type: ignore[arg-type]
    listener(socket, SocketModeRequest(type="interactive", envelope_id="e2", payload=click))  # type: ignore[arg-type]
    assert socket.acked == ["e1", "e2"]
    assert h.settle() == ["resumed"]  # h.actions.handle is the endpoint's handler: same pool, same rules
    assert [a["actor"] for a in _answers(h)] == ["slack T0TEAM/U0ALICE"]


def test_an_app_token_without_an_allow_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="slack_allowed_users"):
        load_receiver_config({"CASSANDRA_RECOVERY_RECEIVER__SLACK_APP_TOKEN": "xapp-1-A0APP-0000-abcdef"})


def test_the_receiver_wires_slack_actions_only_when_slack_is_set_up() -> None:
    store: Any = object()  # never called while wiring
    assert slack_actions(ReceiverConfig(), store, RecordingResumer()) is None
    config = ReceiverConfig(slack_app_token=SecretStr("xapp-1-A0APP-0000-abcdef"), slack_allowed_users=[ALICE])
    actions = slack_actions(config, store, RecordingResumer())
    assert actions is not None and actions.allowed_users == {ALICE} and actions.team_id is None
    actions.close()
