"""SlackNotifier against a local fake of the Slack Web API (a real HTTP server on loopback)."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from cassandra_recovery.clients.slack import (
    LOGGED_ONLY,
    NO_THREAD,
    Delivery,
    IncidentThread,
    SlackNotifier,
    truncate,
)
from tests import faults as F
from tests.fakes.slack_server import FakeSlackServer

pytestmark = pytest.mark.area("incident")

CHANNEL = "#incidents"  # as configured in ClusterConfig.slack_channel; Slack answers with the id


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack-sdk sends everything through HTTP(S)_PROXY when set, ignoring NO_PROXY, loopback too
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _token_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)  # slack-sdk's debug logging included
    yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]  # caplog.records is per phase
    for rec in records:
        text = f"{rec.getMessage()} {rec.exc_text or ''} {rec.args!r}"
        assert "xoxb-" not in text, f"token in log record {rec.name}: {text[:200]}"


def _notifier(slack: FakeSlackServer, **kw: Any) -> SlackNotifier:
    kw.setdefault("timeout_s", 2.0)
    return SlackNotifier(SecretStr(slack.token), kw.pop("channel", CHANNEL), base_url=slack.url, **kw)


def _open(n: SlackNotifier, thread: IncidentThread | None = None, **fields: str) -> IncidentThread | None:
    return n.open_thread("INC-42", "node n2 down", fields or {"node": "n2", "dc": "dc1"}, thread)


# -- threads ----------------------------------------------------------------------------------------


def test_open_thread_posts_once(slack: FakeSlackServer) -> None:
    thread = _open(_notifier(slack))
    assert thread is not None and thread.channel == slack.channel_id
    [root] = slack.messages(CHANNEL)
    assert root["ts"] == thread.ts and root["thread_ts"] is None
    assert root["blocks"][0]["type"] == "header" and "node n2 down" in root["blocks"][0]["text"]["text"]
    assert "INC-42" in root["text"]
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_retried_open_thread_updates_instead_of_posting_twice(slack: FakeSlackServer) -> None:
    n = _notifier(slack)
    first = _open(n)
    again = _open(n, first, node="n2", phase="replace")
    assert again == first
    [root] = slack.messages(CHANNEL)
    assert root["edited"] == 1 and "replace" in json.dumps(root["blocks"])
    assert len(slack.calls_to("chat.postMessage")) == 1 and len(slack.calls_to("chat.update")) == 1


def test_open_thread_posts_anew_when_stored_root_is_gone(slack: FakeSlackServer) -> None:
    thread = _open(_notifier(slack), IncidentThread(slack.channel_id, "1.000001"))
    assert thread is not None and thread.ts != "1.000001"
    assert len(slack.messages(CHANNEL)) == 1


@pytest.mark.fault(F.SLACK_FAILING)
def test_open_thread_keeps_stored_thread_when_update_fails(slack: FakeSlackServer) -> None:
    n = _notifier(slack)
    first = _open(n)
    slack.fail_next(1, status=503)
    assert _open(n, first) == first
    assert len(slack.messages(CHANNEL)) == 1


def test_reply_lands_in_thread_escaped(slack: FakeSlackServer) -> None:
    n = _notifier(slack)
    thread = _open(n)
    assert thread is not None
    assert n.reply(thread, "drained n2 <!channel> & done") == Delivery(True)
    [reply] = slack.replies(thread.ts, CHANNEL)
    assert reply["text"] == "drained n2 &lt;!channel&gt; &amp; done"
    assert [m["thread_ts"] for m in slack.messages(CHANNEL)] == [None, thread.ts]


def test_update_status_rewrites_root(slack: FakeSlackServer) -> None:
    n = _notifier(slack)
    thread = _open(n)
    assert n.update_status(thread, "INC-42", "node n2 down", "resolved", {"node": "n2"}).ok
    [root] = slack.messages(CHANNEL)
    assert "resolved" in root["text"] and "resolved" in root["blocks"][0]["text"]["text"]


# -- limits -----------------------------------------------------------------------------------------


def _section(n: int) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": "s" * n}}


def _mrkdwn(n: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": "f" * n}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"blocks": [_section(1)] * 51}, "invalid_blocks"),
        ({"blocks": [_section(3001)]}, "invalid_blocks"),
        ({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}, "invalid_blocks"),
        ({"blocks": [{"type": "context", "elements": [_mrkdwn(1)] * 11}]}, "invalid_blocks"),
        ({"blocks": [{**_section(1), "block_id": "b" * 256}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section", "fields": [_mrkdwn(1)] * 11}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section", "fields": [_mrkdwn(2001)]}]}, "invalid_blocks"),
        ({"blocks": [_section(0)]}, "invalid_blocks"),
    ],
)
def test_fake_server_enforces_slack_limits(slack: FakeSlackServer, kwargs: dict[str, Any], error: str) -> None:
    client = WebClient(token=slack.token, base_url=slack.url)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=CHANNEL, **{"text": "fallback", **kwargs})
    assert exc.value.response.status_code == 200 and exc.value.response["error"] == error
    # one below each limit is accepted
    assert client.chat_postMessage(channel=CHANNEL, text="x" * 40_000, blocks=[_section(3000)] * 50)["ok"]


def test_oversize_text_and_blocks_are_truncated_and_accepted(slack: FakeSlackServer) -> None:
    n = _notifier(slack)
    thread = n.open_thread("INC-7", "t" * 400, {f"key{i}": "v" * 2500 for i in range(600)}, None)
    assert thread is not None
    [root] = slack.messages(CHANNEL)
    assert len(root["blocks"]) == 50 and len(root["blocks"][0]["text"]["text"]) == 150
    blocks = [
        _section(5000),
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 500}},
        {"type": "section", "fields": [_mrkdwn(2500)] * 12, "block_id": "b" * 300},
        {"type": "context", "elements": [_mrkdwn(5)] * 12},
        *[_section(10)] * 60,
    ]
    assert n.reply(thread, "x" * 50_000, blocks).ok
    [reply] = slack.replies(thread.ts, CHANNEL)
    assert len(reply["text"]) == 40_000 and reply["text"].endswith("…")
    assert len(reply["blocks"]) == 50 and reply["blocks"][0]["text"]["text"].endswith("…")
    assert len(reply["blocks"][2]["fields"]) == 10 and len(reply["blocks"][2]["block_id"]) == 255


def test_truncate_never_splits_an_entity() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("aaaa&amp;bbbb", 7) == "aaaa…"
    assert len(truncate("x" * 10, 5)) == 5


# -- Slack trouble never blocks or raises ---------------------------------------------------------


@pytest.mark.fault(F.SLACK_FAILING)
def test_rate_limit_honours_retry_after_then_succeeds(slack: FakeSlackServer) -> None:
    waits: list[float] = []
    n = _notifier(slack, sleep=waits.append)
    thread = _open(n)
    slack.rate_limit_next(1, retry_after=1)
    assert n.reply(thread, "after 429").ok
    assert waits == [1.0]  # Retry-After honoured once, then the retry went through
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 429, 200]
    assert len(slack.replies(thread.ts if thread else "", CHANNEL)) == 1


@pytest.mark.fault(F.SLACK_FAILING)
def test_rate_limit_wait_is_capped_and_retries_are_bounded(slack: FakeSlackServer) -> None:
    waits: list[float] = []
    n = _notifier(slack, max_retries=2, max_retry_after_s=0.05, sleep=waits.append)
    thread = _open(n)
    slack.rate_limit_next(5, retry_after=30)
    assert n.reply(thread, "still limited") == Delivery(False, "ratelimited")
    assert waits == [0.05, 0.05]  # Retry-After 30 s capped, two retries only
    assert len(slack.calls_to("chat.postMessage")) == 1 + 3  # open + first try + 2 retries


@pytest.mark.fault(F.SLACK_FAILING)
def test_persistent_server_errors_fail_fast_without_raising(
    slack: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    n = _notifier(slack, sleep=waits.append)
    thread = _open(n)
    slack.fail_next(10, status=500)
    assert n.reply(thread, "repair started on n2") == Delivery(False, "http_500")
    assert _open(n) is None
    assert waits == []  # fail fast: a 500 is not waited on
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 500, 500]  # no retry of a 500
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("http_500" in m and "repair started on n2" in m for m in warnings)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.fault(F.SLACK_FAILING)
def test_hanging_server_times_out_within_timeout(slack: FakeSlackServer) -> None:
    n = _notifier(slack, timeout_s=0.3)
    thread = _open(n)
    slack.hang_next(2, seconds=5)
    # The server would answer after 5 s: "timeout" proves the 0.3 s bound cut the attempt short.
    assert n.reply(thread, "slow") == Delivery(False, "timeout")
    assert _open(n) is None


@pytest.mark.fault(F.SLACK_FAILING)
def test_refused_connection_is_retried_then_gives_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    n = SlackNotifier(SecretStr("xoxb-nobody"), CHANNEL, base_url=f"http://127.0.0.1:{port}/api/", max_retries=1)
    res = n.reply(IncidentThread("C1", "1.000001"), "hello")
    assert not res.ok and res.error is not None and "refused" in res.error.lower()


def test_invalid_token_is_reported_not_raised(slack: FakeSlackServer) -> None:
    n = SlackNotifier(SecretStr("xoxb-wrong-token"), CHANNEL, base_url=slack.url)
    assert n.open_thread("INC-1", "t", {}, None) is None
    assert n.reply(IncidentThread(slack.channel_id, "1.000001"), "x") == Delivery(False, "invalid_auth")


def test_unknown_channel(slack: FakeSlackServer) -> None:
    assert _open(_notifier(slack, channel="#nope")) is None
    assert slack.calls[-1].error == "channel_not_found"


# -- not configured: log only -----------------------------------------------------------------------


@pytest.mark.parametrize(("token", "channel"), [(None, CHANNEL), (SecretStr("xoxb-secret-123"), None)])
def test_without_token_or_channel_messages_are_logged_only(
    caplog: pytest.LogCaptureFixture, token: SecretStr | None, channel: str | None
) -> None:
    n = SlackNotifier(token, channel, base_url="http://127.0.0.1:9/api/")
    assert not n.configured
    assert n.open_thread("INC-9", "hints piling up", {"node": "n3"}, None) is None
    res = n.reply(None, "replayed 1200 hints to n3")
    assert res == Delivery(False, LOGGED_ONLY) and res.logged_only
    assert n.update_status(None, "INC-9", "hints piling up", "resolved").logged_only
    logged = [r.getMessage() for r in caplog.records if r.name == "cassandra_recovery.slack"]
    assert any("replayed 1200 hints to n3" in m for m in logged)
    assert any("hints piling up" in m and "node: n3" in m for m in logged)
    assert "xoxb-secret-123" not in caplog.text


def test_reply_without_thread_is_logged(slack: FakeSlackServer, caplog: pytest.LogCaptureFixture) -> None:
    res = _notifier(slack).reply(None, "no thread yet")
    assert res == Delivery(False, NO_THREAD) and res.logged_only
    assert "no thread yet" in caplog.text and slack.calls == []


# -- the fake itself --------------------------------------------------------------------------------


def test_fake_accepts_form_bodies_and_other_methods(slack: FakeSlackServer) -> None:
    body = f"token={slack.token}&channel=incidents&text=form+post".encode()
    req = urllib.request.Request(f"{slack.url}chat.postMessage", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=2) as resp:  # form-encoded, token as a POST parameter
        assert json.load(resp)["ok"]
    assert slack.messages("incidents")[0]["text"] == "form post"
    client = WebClient(token=slack.token, base_url=slack.url)
    assert client.auth_test()["user_id"] == "U0BOT"
    assert client.conversations_info(channel=slack.channel_id)["channel"]["name"] == "incidents"
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=slack.url).auth_test()
    assert exc.value.response["error"] == "not_authed"
