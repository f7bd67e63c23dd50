"""Asking a person and waiting for the answer, for every approval the incident run asks (a replacement, a plan):
the request on the timeline, the question in Slack with Approve/Reject buttons, the suspension, and the answer
settled against the timeline (logic/slack_approvals.settle): a verified Slack answer wins; a Prefect UI answer is
recorded as unverified, or refused and asked again when `approvals.prefect_ui` is `refuse`."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput

from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.slack_approvals import REFUSED, REQUESTED, Settled, UiPolicy, refusals, settle
from cassandra_recovery.settings import Settings
from tasks.incident import EventData, incident_events, slack_reply
from tasks.recovery import record_event

EXPIRED = "approval-timeout"  # the approver the expiry resumes a run with when nobody decided in time


class ReplacementApproval(RunInput):
    """The form shown in the Prefect UI when the suspended incident run is resumed (Slack's buttons resume it with
    the same fields)."""

    approved: bool
    approver: str
    note: str = ""


@task(name="approvals-from-prefect-ui", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def prefect_ui_policy() -> str:
    """Whether answers given in the Prefect UI form are accepted (unverified) or refused (settings: approvals)."""
    return Settings().approvals.prefect_ui


def _policy() -> UiPolicy:
    return "refuse" if prefect_ui_policy() == "refuse" else "accept"


def how_to_answer(deadline: datetime) -> str:
    """The request's last sentence: where to answer, by when, and what happens otherwise."""
    ui = "" if _policy() == "refuse" else " (or resume the incident run in the Prefect UI: recorded as unverified)"
    return f"Approve or Reject with the buttons{ui} before {deadline:%Y-%m-%d %H:%M:%SZ}; otherwise it escalates."


def request_approval(cluster_id: str, incident_id: str, data: EventData, text: str, lease: Lease) -> None:
    """The request on the timeline, then the question in the incident's thread with buttons naming it."""
    record_event(incident_id, REQUESTED, data, lease)
    seq = max(int(e["seq"]) for e in incident_events(incident_id) if e["kind"] == REQUESTED)
    slack_reply(cluster_id, incident_id, text, lease, buttons_for=seq)


def wait_for_answer(cluster_id: str, incident_id: str, key: str, lease: Lease) -> Settled:
    """Suspend until the newest request is answered (a resumed run gets the answer it was resumed with) and
    settle it; a refused Prefect UI answer is recorded and the question asked again under a new key (the old key's
    answer would come back at once)."""
    while True:
        events = incident_events(incident_id)
        asked = refusals(events)
        given = suspend_flow_run(wait_for_input=ReplacementApproval, key=key + (f"-again-{asked}" if asked else ""))
        answer = settle(incident_events(incident_id), given.approved, given.approver, given.note, _policy(), {EXPIRED})
        if not answer.refused:
            return answer
        why = "answers from the Prefect UI are not accepted here (approvals.prefect_ui: refuse)"
        record_event(incident_id, REFUSED, {"approver": answer.approver, "approved": given.approved, "why": why}, lease)
        # The attempt number keeps the text distinct: slack_reply is cached on its inputs within a run.
        slack_reply(
            cluster_id,
            incident_id,
            f"{answer.approver} answered in the Prefect UI (attempt {asked + 1}), which is not accepted here: answer"
            " with the Approve or Reject button of the request above (only allowed Slack users can).",
            lease,
        )
        get_run_logger().warning("a Prefect UI answer by %s was refused; asking again", answer.approver)
