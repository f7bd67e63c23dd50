"""Helpers of the incident and recovery cluster tests: a clean incident slate, flows against the lab's Prefect."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.settings import Settings


def close_open_incident(store: IncidentStore, cluster_id: str) -> None:
    """Tests start without an open incident for the lab (a human would resolve it)."""
    inc = store.open_for(cluster_id)
    if inc is None:
        return
    lease = store.acquire_lease(inc.id, "pytest", 30, run_key=f"pytest-{time.time()}")
    if lease is None:  # an earlier run still holds it: its lease must expire first
        raise AssertionError(f"incident {inc.id} still leased by {inc.lease_holder}\n" + timeline_tail(store, inc.id))
    from cassandra_recovery.logic.incident_states import IncidentState

    state = IncidentState(inc.state)
    path = {
        "detected": ["assessing", "resolved"],
        "assessing": ["resolved"],
        "escalated": ["assessing", "resolved"],
        "mitigating": ["recovering", "verifying", "resolved"],
        "recovering": ["verifying", "resolved"],
        "verifying": ["resolved"],
        "monitoring": ["resolved"],
    }[state.value]
    for nxt in path:
        store.transition(inc.id, state, IncidentState(nxt), lease, {"reason": "test clean-up"})
        state = IncidentState(nxt)
    # What a run stopped halfway leaves behind goes with the incident: its repair pause.
    from cassandra_recovery.mitigation.pauses import RepairPauses

    RepairPauses(store.pool).resume(cluster_id, inc.id)


def run_flow(fn: Any, env: dict[str, str], **kwargs: Any) -> Any:
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_RESULTS_PERSIST_BY_DEFAULT,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_URL: env["PREFECT_API_URL"],
            PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"],
            PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
            PREFECT_LOCAL_STORAGE_PATH: env["PREFECT_LOCAL_STORAGE_PATH"],
        }
    ):
        return fn(**kwargs)


def prefect_api(env: dict[str, str]) -> Any:
    """Settings context pointing this process's Prefect client at the project's server, with its credentials."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    auth = env["PREFECT_API_AUTH_STRING"]
    return temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: auth})


def wait_for(cond: Any, timeout_s: float, what: str, every_s: float = 1.0, explain: Any = None) -> Any:
    """cond()'s first truthy value, polled every `every_s`; fails the test naming `what` after the timeout, with
    what `explain()` says of the state it was left in (a CI failure is read from its output alone)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not (got := cond()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}" + _explained(explain))
        time.sleep(every_s)
    return got


def _explained(explain: Any) -> str:
    if explain is None:
        return ""
    try:
        return "\n" + str(explain())
    except Exception as e:  # noqa: BLE001 - the timeout is the failure; a broken explanation must not hide it
        return f"\n(could not explain: {type(e).__name__}: {e})"


def timeline_tail(store: IncidentStore, incident_id: str, last: int = 25) -> str:
    """The incident's state, lease and last timeline events, one line each: what a failed wait left behind."""
    inc = store.get(incident_id)
    lines = [f"incident {inc.id}: {inc.state.value}, lease {inc.lease_holder} token {inc.fencing_token} "
             f"until {inc.lease_expires_at}"]  # fmt: skip
    for e in store.events(incident_id)[-last:]:
        lines.append(f"  {e.at:%H:%M:%S} {e.kind} by {e.actor} (token {e.fencing_token}): {str(e.data)[:200]}")
    return "\n".join(lines)


_ROOT = Path(__file__).resolve().parents[2]


def log_file(name: str) -> Path:
    """A log the tests keep in the checkout for a failed run's reader; the lab that bin/test runs beside the
    shared one (shifted addresses) keeps its own, so neither truncates the other's."""
    offset = Settings().lab.address_offset
    return _ROOT / (f".pytest-{name}.log" if offset == 0 else f".pytest-{name}-lab{offset}.log")


def recent_log_tails(since: float, lines: int = 80) -> list[tuple[str, str]]:
    """(name, last lines) of this lab's project logs (serve, receiver, detector, demo) written since `since`
    (epoch seconds): a failed cluster test shows them, since CI keeps nothing but its output."""
    offset = Settings().lab.address_offset
    mine = [p for p in _ROOT.glob(".pytest-*.log") if ("-lab" in p.stem) == (offset != 0)]
    if offset:
        mine = [p for p in mine if p.stem.endswith(f"-lab{offset}")]
    out = []
    for p in sorted(mine):
        if p.stat().st_mtime >= since:
            tail = p.read_text(errors="replace").splitlines()[-lines:]
            out.append((p.name, "\n".join(tail)))
    return out


def capture_timeline(store: IncidentStore, incident_id: str, name: str) -> None:
    """With CR_CAPTURE_TIMELINES=<dir>, write the incident's timeline as tests/fixtures/timelines keeps them (real
    captured incidents for the pure timeline readers and the runbook conformance test); otherwise nothing."""
    out = os.environ.get("CR_CAPTURE_TIMELINES")
    if not out:
        return
    events = [
        {"seq": e.seq, "at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, "data": e.data}
        for e in store.events(incident_id)
    ]
    doc = {
        "captured_from": f"lab run {datetime.now(UTC):%Y-%m-%d}, tests/cluster (real 3-node lab)",
        "incident": incident_id,
        "events": events,
    }
    Path(out, f"{name}.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
