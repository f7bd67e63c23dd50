"""Approvals answered from Slack (pure): the buttons' values, whether a click answers the request it was shown
with, and how the incident run settles an answer (a verified Slack answer wins; a Prefect UI answer is accepted
as unverified or refused, by setting)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

APPROVE, REJECT = "cr_approve", "cr_reject"  # the buttons' action_id
REQUESTED, DECIDED = "approval_requested", "approval_decided"
# A person's verified answer from Slack, recorded by the receiver before it resumes the run; the run then records
# `approval_decided` from it. A second kind (not `approval_decided`) keeps the request open until the run acts.
ANSWERED = "approval_answered"
REFUSED = "approval_refused"  # an answer from the Prefect UI refused by `approvals.prefect_ui: refuse`
UNVERIFIED_UI = " (unverified: Prefect UI)"
UiPolicy = Literal["accept", "refuse"]


@dataclass(frozen=True)
class Button:
    """What an Approve/Reject button carries: which incident and which request (its timeline seq)."""

    incident_id: str
    request_seq: int
    approve: bool

    @property
    def action_id(self) -> str:
        return APPROVE if self.approve else REJECT

    @property
    def value(self) -> str:
        return json.dumps({"incident": self.incident_id, "seq": self.request_seq}, separators=(",", ":"))


def parse_button(action_id: object, value: object) -> Button | None:
    """The button a click names, or None for anything that is not one of ours."""
    if action_id not in (APPROVE, REJECT) or not isinstance(value, str) or len(value) > 200:
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("incident"), str) or type(doc.get("seq")) is not int:
        return None
    return Button(doc["incident"], doc["seq"], action_id == APPROVE)


def slack_approver(team_id: str, user_id: str) -> str:
    """How the timeline names a verified Slack approver."""
    return f"slack {team_id}/{user_id}"


def ui_approver(name: str) -> str:
    """How the timeline names a Prefect UI approver: the typed name, which nobody verified."""
    return (name.strip() or "anonymous") + UNVERIFIED_UI


@dataclass(frozen=True)
class Click:
    """What a click on a request's buttons means now. `answers`: it is the first answer to the open request;
    otherwise `why` says so ("decided": someone answered first, named in `decided_by`; "superseded": a newer
    request replaced it; "unknown": no such request on this incident)."""

    answers: bool
    why: Literal["open", "decided", "superseded", "unknown"]
    request: dict[str, Any] | None = None
    decided_by: str | None = None
    decided_approved: bool | None = None


def click_outcome(events: Iterable[Mapping[str, Any]], request_seq: int) -> Click:
    """Whether a click on the request recorded at `request_seq` answers it (events in timeline order). Double
    clicks and old messages change nothing: the first answer after a request is its answer."""
    evs = list(events)
    asked = next((e for e in evs if e.get("kind") == REQUESTED and int(e["seq"]) == request_seq), None)
    if asked is None:
        return Click(False, "unknown")
    request = dict(asked.get("data") or {})
    later = [e for e in evs if int(e["seq"]) > request_seq]
    nxt = next((int(e["seq"]) for e in later if e.get("kind") == REQUESTED), None)
    answers = [e for e in later if e.get("kind") in (ANSWERED, DECIDED) and (nxt is None or int(e["seq"]) < nxt)]
    if answers:
        data = answers[0].get("data") or {}
        return Click(False, "decided", request, str(data.get("approver", "")), bool(data.get("approved")))
    if nxt is not None:
        return Click(False, "superseded", request)
    return Click(True, "open", request)


def _since_newest_request(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    evs = list(events)
    starts = [i for i, e in enumerate(evs) if e.get("kind") == REQUESTED]
    return evs[starts[-1] + 1 :] if starts else []


def refusals(events: Iterable[Mapping[str, Any]]) -> int:
    """How many Prefect UI answers were refused since the newest request (each asks again under a new key)."""
    return sum(1 for e in _since_newest_request(events) if e.get("kind") == REFUSED)


@dataclass(frozen=True)
class Settled:
    """The answer the run acts on; `refused`: a Prefect UI answer the setting refuses (record it, ask again)."""

    approved: bool
    approver: str
    note: str
    verified: bool
    refused: bool = False

    def decision(self) -> dict[str, Any]:
        """The `approval_decided` event's data."""
        return {"approved": self.approved, "approver": self.approver, "note": self.note, "verified": self.verified}


def settle(
    events: Iterable[Mapping[str, Any]], approved: bool, approver: str, note: str, ui: UiPolicy, system: set[str]
) -> Settled:
    """The answer to the newest request from what resumed the run (`approved`, `approver`, `note`) and the
    timeline: a verified Slack answer recorded since the request wins (the resume may carry anything, and a
    resume that failed is made good by the next one, the expiry's included); an answer by the system itself
    (an approver in `system`, e.g. the expiry) stands as it is; anything else came from the Prefect UI form."""
    answered = [e for e in _since_newest_request(events) if e.get("kind") == ANSWERED]
    if answered:
        d = answered[0].get("data") or {}
        return Settled(bool(d.get("approved")), str(d.get("approver")), str(d.get("note") or ""), True)
    if approver in system:
        return Settled(approved, approver, note, False)
    return Settled(approved, ui_approver(approver), note, False, refused=ui == "refuse")


def unapplied_answer(
    events: Iterable[Mapping[str, Any]], flow_run_id: str, now: datetime, grace_s: float
) -> dict[str, Any] | None:
    """A verified answer to the newest request of this run that the run has not acted on (no `approval_decided`
    yet) for `grace_s`: the receiver's resume failed, so the approval resumer resumes the run with it. The grace
    keeps the resumer from racing the receiver's own resume."""
    evs = list(events)
    asked = [e for e in evs if e.get("kind") == REQUESTED and (e.get("data") or {}).get("flow_run_id") == flow_run_id]
    if not asked:
        return None
    after = [e for e in evs if int(e["seq"]) > int(asked[-1]["seq"])]
    if any(e.get("kind") in (DECIDED, REQUESTED) for e in after):
        return None
    answered = [e for e in after if e.get("kind") == ANSWERED]
    if not answered or (now - answered[0]["at"]).total_seconds() < grace_s:
        return None
    return dict(answered[0].get("data") or {})
