"""The incident's report: built from its timeline, kept in PostgreSQL, shown as Prefect artifacts, sent to Slack."""

from __future__ import annotations

import re
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.contracts import PostmortemDoc, SlackPostDoc
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.postmortem import (
    PostMortem,
    build_postmortem,
    progress_table,
    render_markdown,
    render_slack_summary,
)
from tasks.incident import _store, slack_reply


def artifact_key(prefix: str, incident_id: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9-]+", "-", incident_id.lower()).strip("-")


def _postmortem(incident_id: str) -> PostMortem:
    store = _store()
    inc = store.get(incident_id)
    incident = {
        "id": inc.id,
        "cluster_id": inc.cluster_id,
        "state": inc.state.value,
        "opened_at": inc.opened_at,
        "closed_at": inc.closed_at,
        "trigger": inc.trigger,
        "plan": inc.plan,
    }
    events = [e.__dict__ for e in store.events(incident_id)]
    return build_postmortem(incident, events)


def _done_share(incident_id: str) -> float:
    rows = progress_table(_postmortem(incident_id))
    return 100.0 * sum(r["status"] in ("done", "skipped") for r in rows) / max(len(rows), 1)


@task(name="incident-progress", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def incident_progress(incident_id: str, artifact_id: str | None = None) -> str | None:
    """A progress artifact following the phases (created on the first call, updated after); never fails the run."""
    try:
        share = _done_share(incident_id)
        if artifact_id is None:
            made = create_progress_artifact(
                share, key=artifact_key("progress", incident_id), description=f"Incident {incident_id}: phases done"
            )
            return str(made)
        update_progress_artifact(UUID(artifact_id), share)
        return artifact_id
    except Exception as e:  # a progress bar is never worth a failed recovery
        get_run_logger().warning("progress artifact not updated: %s", e)
        return artifact_id


@task(name="write-postmortem", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def write_postmortem(cluster_id: str, incident_id: str, lease: Lease | None) -> PostmortemDoc:
    """Markdown artifact + a new report version in PostgreSQL + a summary in the incident's Slack thread."""
    pm = _postmortem(incident_id)
    markdown = render_markdown(pm)
    create_markdown_artifact(
        markdown, key=artifact_key("postmortem", incident_id), description=f"Post-mortem of incident {incident_id}"
    )
    version = _store().save_report(incident_id, markdown)
    posted: SlackPostDoc = {"posted": False, "error": "no lease"}
    if lease is not None:
        posted = slack_reply.fn(cluster_id, incident_id, render_slack_summary(pm), lease)
    return {"version": version, "state": pm.state, "chars": len(markdown), "slack": posted}
