"""Slack interactivity: the approval message's Approve/Reject buttons, the request signature check, and the
answer through a click's `response_url` (best effort, never raising)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.webhook import WebhookClient

from cassandra_recovery.clients.slack import Block, escape, truncate
from cassandra_recovery.logic.slack_approvals import Button

log = logging.getLogger(__name__)
SLACK_RESPONSE_URLS = "https://hooks.slack.com/"


def approval_blocks(text: str, incident_id: str, request_seq: int) -> list[Block]:
    """The request as a section with Approve and Reject buttons that name the request (not the run: the receiver
    reads the run from the timeline, never from what a click carries)."""
    buttons = []
    for approve, label, style in ((True, "Approve", "primary"), (False, "Reject", "danger")):
        b = Button(incident_id, request_seq, approve)
        label_obj = {"type": "plain_text", "text": label}
        buttons.append({"type": "button", "text": label_obj, "style": style, "action_id": b.action_id,
                        "value": b.value})  # fmt: skip
    section = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(escape(text), 3000) or " "}}
    return [section, {"type": "actions", "block_id": f"cr_approval_{request_seq}", "elements": buttons}]


class _FixedClock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def signature_valid(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: Callable[[], float] = time.time
) -> bool:
    """Slack's v0 signature over the raw body, within 5 minutes of `now()` (slack-sdk's verifier). A malformed
    timestamp or a body that is not UTF-8 is simply invalid (slack-sdk raises on them)."""
    if not timestamp or not signature or not timestamp.strip().isdigit():
        return False
    try:
        return SignatureVerifier(secret, clock=_FixedClock(now)).is_valid(body, timestamp, signature)
    except (ValueError, UnicodeDecodeError):
        return False


class Responder:
    """Replaces the clicked message through its `response_url`; only URLs under `allowed_prefix` (Slack's) are
    called, so a forged payload cannot make the receiver post elsewhere."""

    def __init__(self, allowed_prefix: str = SLACK_RESPONSE_URLS, timeout_s: int = 5) -> None:
        self.allowed_prefix, self.timeout_s = allowed_prefix, timeout_s

    def respond(self, response_url: str, text: str, replace_original: bool = True) -> bool:
        if not response_url.startswith(self.allowed_prefix):
            log.warning("response_url outside %s ignored", self.allowed_prefix)
            return False
        try:
            res = WebhookClient(response_url, timeout=self.timeout_s).send(
                text=truncate(text, 3000),
                replace_original=replace_original,
                response_type=None if replace_original else "ephemeral",
            )
        except Exception as e:  # Slack away or slow: the timeline has the decision, the message stays as it was
            log.warning("slack response_url failed: %s", type(e).__name__)
            return False
        return bool(res.status_code == 200)
