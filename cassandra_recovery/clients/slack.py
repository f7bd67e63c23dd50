"""Incident threads in Slack: best effort, bounded in time, never raising into the pipeline.

One root message per incident, replies in its thread. `timeout_s` bounds each attempt; 429s are
retried after Retry-After (capped), refused/reset connections up to `max_retries` times; timeouts
and 5xx are not (the post may have landed). No token/channel: messages go to the log only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.error import URLError

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger("cassandra_recovery.slack")
# slack-sdk logs every failure at ERROR; we report it once, as a warning, so drop its errors.
_sdk_log = logging.getLogger("cassandra_recovery.slack.sdk")
_sdk_log.addFilter(lambda record: record.levelno < logging.ERROR)

LOGGED_ONLY, NO_THREAD = "logged-only", "no-thread"
MAX_TEXT, MAX_BLOCKS, MAX_SECTION, MAX_FIELDS, MAX_FIELD, MAX_HEADER, MAX_CONTEXT, MAX_BLOCK_ID = (
    40_000, 50, 3000, 10, 2000, 150, 10, 255)  # fmt: skip
Block = dict[str, Any]


@dataclass(frozen=True)
class IncidentThread:
    """Where an incident's root message lives; store it with the incident to survive retries."""

    channel: str  # channel id as Slack returned it (chat.update needs the id)
    ts: str


@dataclass(frozen=True)
class Delivery:
    """Outcome of one message; `error` is Slack's error code, `http_NNN`, `timeout`, `connection: ...`."""

    ok: bool
    error: str | None = None

    @property
    def logged_only(self) -> bool:
        return self.error in (LOGGED_ONLY, NO_THREAD)


def escape(text: str) -> str:
    """Slack mrkdwn escaping, so tool output cannot ping @channel or forge links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """At most `limit` chars, ending in '…' when cut; never splits an &amp;-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 5:
        cut = cut[:amp]
    return cut + "…"


def _mrkdwn(text: str, limit: int) -> Block:
    return {"type": "mrkdwn", "text": truncate(text, limit) or " "}


def header_block(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER) or " "}}


def section_block(text: str, *, escaped: bool = False) -> Block:
    return {"type": "section", "text": _mrkdwn(text if escaped else escape(text), MAX_SECTION)}


def fields_blocks(fields: dict[str, str]) -> list[Block]:
    """`*key*\\nvalue` fields, at most 10 per section (so several sections for many fields)."""
    items = [_mrkdwn(f"*{escape(k)}*\n{escape(v) or '-'}", MAX_FIELD) for k, v in fields.items()]
    return [{"type": "section", "fields": items[i : i + MAX_FIELDS]} for i in range(0, len(items), MAX_FIELDS)]


def context_block(*texts: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(escape(t), MAX_SECTION) for t in texts[:MAX_CONTEXT]]}


def clamp_blocks(blocks: list[Block]) -> list[Block]:
    """Make caller-built blocks acceptable: truncate texts, cap fields/elements/block_id and count."""
    out: list[Block] = []
    for b in blocks:
        b = dict(b)
        if isinstance(b.get("block_id"), str):
            b["block_id"] = b["block_id"][:MAX_BLOCK_ID]
        limit = {"header": MAX_HEADER, "section": MAX_SECTION}.get(str(b.get("type")))
        if limit and isinstance(b.get("text"), dict):
            b["text"] = {**b["text"], "text": truncate(str(b["text"].get("text") or " "), limit)}
        if isinstance(b.get("fields"), list):
            fields = b["fields"][:MAX_FIELDS]
            b["fields"] = [{**f, "text": truncate(str(f.get("text") or " "), MAX_FIELD)} for f in fields]
        if b.get("type") == "context" and isinstance(b.get("elements"), list):
            b["elements"] = b["elements"][:MAX_CONTEXT]
        out.append(b)
    if len(out) > MAX_BLOCKS:
        out = [*out[: MAX_BLOCKS - 1], context_block(f"… {len(out) - MAX_BLOCKS + 1} more blocks omitted")]
    return out


def _is_timeout(err: BaseException | None) -> bool:
    return isinstance(err, TimeoutError) or (isinstance(err, URLError) and isinstance(err.reason, TimeoutError))


class _CappedRateLimitHandler(RateLimitErrorRetryHandler):
    """Waits Retry-After like slack-sdk's own handler, but never longer than `cap_s`."""

    def __init__(self, max_retry_count: int, cap_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.cap_s = cap_s
        self.sleep = sleep  # injected by tests: they check the waits, not the wall clock

    def prepare_for_next_attempt(self, *, state: RetryState, response: HttpResponse | None = None, **_: Any) -> None:
        value = ({k.lower(): v for k, v in response.headers.items()} if response else {}).get("retry-after") or ["1"]
        wait = float(value[0]) if value[0].strip().isdigit() else 1.0
        state.next_attempt_requested = True
        self.sleep(max(0.0, min(wait, self.cap_s)))
        state.increment_current_attempt()


class _ConnectionRetryHandler(ConnectionErrorRetryHandler):
    """Retries refused/reset connections, not timeouts: a hung Slack must cost one timeout only."""

    def _can_retry(self, **kw: Any) -> bool:
        return not _is_timeout(kw.get("error")) and super()._can_retry(**kw)


class SlackNotifier:
    """Posts incident threads; every method returns a result instead of raising. Never logs the token."""

    def __init__(
        self,
        token: SecretStr | None,
        channel: str | None,
        base_url: str | None = None,
        timeout_s: float = 5.0,
        max_retries: int = 2,
        max_retry_after_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.channel = channel or None
        self._secret = token.get_secret_value().strip() if token else ""
        self._client: WebClient | None = None
        if self._secret and self.channel:
            self._client = WebClient(
                token=self._secret,
                base_url=base_url or WebClient.BASE_URL,
                timeout=cast(int, timeout_s),  # urllib takes float seconds; slack-sdk's hint says int
                logger=_sdk_log,
                retry_handlers=[
                    _CappedRateLimitHandler(max_retries, max_retry_after_s, sleep),
                    _ConnectionRetryHandler(max_retries, FixedValueRetryIntervalCalculator(0.25)),
                ],
            )

    @property
    def configured(self) -> bool:
        """False when messages only go to the log (no token or no channel)."""
        return self._client is not None

    def open_thread(
        self,
        incident_id: str,
        title: str,
        fields: dict[str, str],
        thread: IncidentThread | None = None,
        status: str = "open",
    ) -> IncidentThread | None:
        """Post the root message, or chat.update it when `thread` exists (a retried step): returns the
        thread to store (the given one even if its update failed), None if nothing was posted."""
        text, blocks = self._root(incident_id, title, fields, status)
        payload = {"text": text, "blocks": blocks}
        if thread is not None:
            res = self._call("chat.update", text, {"channel": thread.channel, "ts": thread.ts, **payload})
            if not isinstance(res, Delivery) or res.error not in ("message_not_found", "channel_not_found"):
                return thread  # updated, or Slack trouble: keep the stored thread
        log_text = text + "".join(f"\n{k}: {v}" for k, v in fields.items())
        res = self._call("chat.postMessage", log_text, {"channel": self.channel, **payload})
        return None if isinstance(res, Delivery) else IncidentThread(str(res["channel"]), str(res["ts"]))

    def reply(self, thread: IncidentThread | None, text: str, blocks: list[Block] | None = None) -> Delivery:
        """A reply in the incident thread; text is escaped mrkdwn, cut at Slack's 40,000 chars."""
        body = truncate(escape(text), MAX_TEXT)
        if thread is None:
            return self._log_only(body, NO_THREAD if self.configured else LOGGED_ONLY)
        payload = {"channel": thread.channel, "thread_ts": thread.ts, "text": body}
        res = self._call("chat.postMessage", body, {**payload, "blocks": clamp_blocks(blocks)} if blocks else payload)
        return res if isinstance(res, Delivery) else Delivery(True)

    def update_status(
        self,
        thread: IncidentThread | None,
        incident_id: str,
        title: str,
        status: str,
        fields: dict[str, str] | None = None,
    ) -> Delivery:
        """Re-render the root message with a new status (pass the same fields as open_thread)."""
        text, blocks = self._root(incident_id, title, fields or {}, status)
        if thread is None:
            return self._log_only(text, NO_THREAD if self.configured else LOGGED_ONLY)
        where = {"channel": thread.channel, "ts": thread.ts}
        res = self._call("chat.update", text, {**where, "text": text, "blocks": blocks})
        return res if isinstance(res, Delivery) else Delivery(True)

    def page(self, thread: IncidentThread | None, text: str) -> Delivery:
        """A new message in the channel with @here (a thread reply notifies nobody who is not in it), linked to the
        incident's thread when there is one."""
        body = "<!here> " + truncate(escape(text), MAX_TEXT - 8)
        if not self.configured:
            return self._log_only(body, LOGGED_ONLY)
        payload: dict[str, Any] = {"channel": self.channel, "text": body}
        if thread is not None:  # in the thread and, broadcast, in the channel
            payload |= {"channel": thread.channel, "thread_ts": thread.ts, "reply_broadcast": True}
        res = self._call("chat.postMessage", body, payload)
        return res if isinstance(res, Delivery) else Delivery(True)

    @staticmethod
    def _root(incident_id: str, title: str, fields: dict[str, str], status: str) -> tuple[str, list[Block]]:
        text = truncate(escape(f"[{incident_id}] {title} - {status}"), MAX_TEXT)
        blocks = [
            header_block(f"{title} [{status}]"),
            *fields_blocks({"Incident": incident_id, "Status": status, **fields}),
            context_block(f"incident {incident_id} · updated {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}"),
        ]
        return text, clamp_blocks(blocks)

    def _log_only(self, text: str, reason: str) -> Delivery:
        log.info("slack %s [%s]: %s", reason, self.channel or "-", self._redact(text))
        return Delivery(False, reason)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _call(self, method: str, log_text: str, payload: dict[str, Any]) -> dict[str, Any] | Delivery:
        """The response data, or a failed Delivery (already logged, with the message text)."""
        if self._client is None:
            return self._log_only(log_text, LOGGED_ONLY)
        try:
            resp = self._client.api_call(method, json=payload)
            return dict(resp.data) if isinstance(resp.data, dict) else {}
        except SlackApiError as e:
            status = e.response.status_code
            err = str(e.response.get("error")) if status in (200, 429) else f"http_{status}"
        except Exception as e:  # timeouts, refused/reset connections, bad bodies: never into the pipeline
            err = "timeout" if _is_timeout(e) else f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"
        err = self._redact(err)
        log.warning("slack %s failed (%s); message was: %s", method, err, self._redact(truncate(log_text, 2000)))
        return Delivery(False, err)
