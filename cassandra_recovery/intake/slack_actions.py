"""Approve/Reject clicks from Slack, without HTTP: who may click, which request a click answers, and the work after
the acknowledgement (the answer on the timeline first, then the run resumed, then the message replaced).

The HTTP endpoint (app.py) and Socket Mode (slack_socket.py) both call `SlackActions.handle` with a payload whose
origin they checked; it returns at once and does the work on a small thread pool (Slack wants its answer within
3 seconds)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from cassandra_recovery.clients.slack import escape
from cassandra_recovery.logic.slack_approvals import ANSWERED, Button, click_outcome, parse_button, slack_approver

log = logging.getLogger(__name__)


class Timeline(Protocol):
    def events(self, incident_id: str) -> list[dict[str, Any]]:
        """The incident's events in order (`seq`, `kind`, `data`); none for an unknown incident."""

    def record(self, incident_id: str, kind: str, actor: str, data: Mapping[str, Any]) -> None:
        """Append an event (no lease: a person's action, like the CLI's)."""


class Resumer(Protocol):
    def resume_run(self, run_id: str, run_input: Mapping[str, Any]) -> None:
        """Resume the suspended run with this input; raises when it could not."""


class Responder(Protocol):
    def respond(self, response_url: str, text: str, replace_original: bool = True) -> bool:
        """Replace the clicked message (or, not replacing, say something only the clicker sees)."""


@dataclass(frozen=True)
class Click:
    """One click as Slack described it (block_actions), before anything is decided about it."""

    team_id: str
    user_id: str
    button: Button
    response_url: str
    message_text: str = ""  # the clicked message's text (ours, as Slack stored it): kept when it is replaced


def parse_click(payload: Mapping[str, Any]) -> Click | None:
    """Our button click in a `block_actions` payload, or None for anything else (ignored with a 200)."""
    if payload.get("type") != "block_actions":
        return None
    actions, user, team = payload.get("actions"), payload.get("user"), payload.get("team")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        return None
    button = parse_button(actions[0].get("action_id"), actions[0].get("value"))
    user_id = user.get("id") if isinstance(user, dict) else None
    team_id = (team.get("id") if isinstance(team, dict) else None) or (user or {}).get("team_id")
    url = payload.get("response_url")
    if button is None or not isinstance(user_id, str) or not isinstance(team_id, str) or not isinstance(url, str):
        return None
    message = payload.get("message")
    text = message.get("text") if isinstance(message, dict) else None
    return Click(team_id, user_id, button, url, text if isinstance(text, str) else "")


class SlackActions:
    """Allow-list first (user ids, and the workspace when `team_id` is set), then the decision in the background."""

    def __init__(
        self,
        timeline: Timeline,
        resumer: Resumer,
        responder: Responder,
        allowed_users: frozenset[str],
        team_id: str | None = None,
        workers: int = 2,
    ) -> None:
        self.timeline, self.resumer, self.responder = timeline, resumer, responder
        self.allowed_users, self.team_id = allowed_users, team_id
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-actions")
        # One answer per request: the check and the record happen under this lock (one receiver process; across
        # processes the first answer on the timeline is the answer, and the run reads it from there).
        self._lock = threading.Lock()

    def handle(self, payload: Mapping[str, Any]) -> Future[str] | None:
        """Acknowledge now; the work runs on the pool (its Future says what it did, for tests and logs)."""
        click = parse_click(payload)
        if click is None:
            return None
        if click.user_id not in self.allowed_users or (self.team_id is not None and click.team_id != self.team_id):
            who = slack_approver(click.team_id, click.user_id)
            log.warning("approval click refused: %s not in the allow-list", who)
            return self._pool.submit(self._say, click, "You are not allowed to approve recovery actions.", "refused")
        return self._pool.submit(self._decide, click)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _say(self, click: Click, text: str, outcome: str) -> str:
        self.responder.respond(click.response_url, text, replace_original=False)
        return outcome

    def _decide(self, click: Click) -> str:
        b, who = click.button, slack_approver(click.team_id, click.user_id)
        try:
            with self._lock:
                seen = click_outcome(self.timeline.events(b.incident_id), b.request_seq)
                if seen.answers:
                    data = {"approved": b.approve, "approver": who, "note": "", "verified": True,
                            "via": "slack", "request_seq": b.request_seq, "team_id": click.team_id,
                            "user_id": click.user_id}  # fmt: skip
                    self.timeline.record(b.incident_id, ANSWERED, who, data)
        except Exception as e:  # PostgreSQL away: nothing recorded, the person may click again
            log.warning("approval click not recorded: %s", type(e).__name__)
            return self._say(click, "The answer could not be recorded (the store is away); try again.", "unrecorded")
        if not seen.answers:
            if seen.why == "decided":
                verb = "approved" if seen.decided_approved else "rejected"
                by = escape(seen.decided_by or "?")  # a Prefect UI name is typed text: it must not ping anyone
                return self._say(click, f"Already {verb} by {by}; nothing changed.", "already_decided")
            if seen.why == "unknown":
                return self._say(click, "This approval request is unknown here.", "unknown")
            return self._say(click, "This request is no longer open (a newer one replaced it).", seen.why)
        verb = "Approved" if b.approve else "Rejected"
        outcome, text = "resumed", f"{verb} by <@{click.user_id}>."
        run_id = str((seen.request or {}).get("flow_run_id") or "")
        try:
            self.resumer.resume_run(run_id, {"approved": b.approve, "approver": who, "note": ""})
        except Exception as e:  # the answer is on the timeline: the run takes it when it next resumes (the expiry)
            log.warning("run %s not resumed after a Slack answer: %s", run_id, e)
            later = "The run could not be resumed now; it takes this answer when it next runs."
            outcome, text = "recorded", f"{text} {later}"
        # The request stays readable, its buttons go (a replaced message keeps only what is sent).
        self.responder.respond(click.response_url, f"{click.message_text}\n*{text}*" if click.message_text else text)
        return outcome
