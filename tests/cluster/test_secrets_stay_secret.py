"""Issue 20: no configured secret shows where others can read it, after the shared-lab tests of its lane ran
(incidents, approvals, the receiver, Slack, chaos): process command lines,
the Prefect server's log, flow-run parameters and artifacts, the incident timeline and the fenced log, what the fake
Slack was sent, the project's logs and the nodes' logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cassandra_recovery.clients.postgres import fetch_all, make_pool
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.jmx_auth import lab_jmx_password
from cassandra_recovery.lab.postgres import lab_password
from cassandra_recovery.lab.prefect_server import api_auth, prefect_home
from cassandra_recovery.settings import Settings
from tests.cluster import slack_seen
from tests.cluster.incident_env import prefect_api
from tests.fakes.slack_server import DEFAULT_TOKEN

pytestmark = pytest.mark.area("lab")
ROOT = Path(__file__).resolve().parents[2]


def _secrets(settings: Settings) -> dict[str, str]:
    found = {
        "postgres password": lab_password(settings.lab),
        "jmx password": lab_jmx_password(settings.lab),
        "prefect api auth": api_auth(settings).split(":", 1)[1],
        "slack token (the stub's)": DEFAULT_TOKEN,
    }
    for token in settings.lab.base_dir.rglob("*.token"):  # the receiver's bearer tokens the tests made
        if value := token.read_text().strip():
            found[f"token file {token.name}"] = value
    return found


def _cmdlines() -> str:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append(entry.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(out)


def _files(paths: list[Path]) -> dict[str, str]:
    return {str(p): p.read_text(errors="replace") for p in paths if p.is_file()}


def _prefect_documents(env: dict[str, str]) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with prefect_api(env), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200, sort=FlowRunSort.START_TIME_DESC)
        artifacts = client.read_artifacts(limit=200)
    docs = [{"parameters": r.parameters, "state": r.state.message if r.state else None} for r in runs]
    docs += [{"artifact": a.data, "description": a.description} for a in artifacts]
    return json.dumps(docs, default=str)


@pytest.mark.ends_shared_lab(-1)  # after every test of the shared lab, before the ones that take it down
def test_no_configured_secret_is_in_argv_logs_prefect_or_the_timeline(lab: Lab, prefect_server: dict[str, str]) -> None:
    settings = Settings()
    secrets = _secrets(settings)
    pool = make_pool(settings, max_size=1)
    try:
        with pool.connection() as conn:
            timeline = json.dumps(fetch_all(conn.execute("SELECT actor, kind, data FROM incident_events")), default=str)
            effects = json.dumps(
                fetch_all(conn.execute("SELECT target, outcome, detail FROM side_effects")), default=str
            )
    finally:
        pool.close()
    places = {
        "process command lines": _cmdlines(),
        "Prefect flow-run parameters, state messages and artifacts": _prefect_documents(prefect_server),
        "incident timeline": timeline,
        "fenced log": effects,
        "what the fake Slack was sent": slack_seen.everything(),
    }
    logs = [prefect_home(settings) / "server.log", *ROOT.glob(".pytest-*.log")]
    logs += list(settings.lab.base_dir.glob("*/logs/*.log"))
    logs += [*settings.lab.base_dir.glob("nodes/*/logs/*.log"), *settings.lab.base_dir.glob("nodes/*/stdout.log")]
    places |= _files(logs)
    assert len(places) > 5 and all(len(v) > 0 for v in secrets.values())  # the scan saw what it claims to
    leaks = [f"{name} in {where}" for where, text in places.items() for name, value in secrets.items() if value in text]
    assert not leaks, leaks
