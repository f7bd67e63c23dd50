"""Crashed deployed runs are resumed a capped number of times, then escalated (real Prefect server on PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.lab.prefect_server import client_env, ensure_prefect_server, healthy, stop_prefect_server
from cassandra_recovery.settings import Settings
from tests import faults as F

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning runs psql through runuser, which needs root"),
    pytest.mark.area("incident"),
]


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    settings = Settings()
    ensure_postgres(settings)
    request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # conftest stops it at the end
    started_here = not healthy(settings)
    ensure_prefect_server(settings)
    yield client_env(settings)
    if started_here:
        stop_prefect_server(settings)


def _with_api(env: dict[str, str]) -> Any:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    auth = env["PREFECT_API_AUTH_STRING"]
    return temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: auth})


@pytest.mark.fault(F.FLOW_RUN_CRASHED)
def test_crashed_run_is_resumed_twice_then_escalated(api: dict[str, str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    from deployments.resume import resume_crashed_once
    from flows.queue import drain_write_queue

    escalated: list[tuple[str, int]] = []
    with _with_api(api):
        deployment = drain_write_queue.to_deployment(name="crash-resume-test")
        deployment.apply()
        run: Any = run_deployment("drain-write-queue/crash-resume-test", parameters={"cluster_id": "lab"}, timeout=0)
        with get_client(sync_client=True) as client:
            outcomes = []
            for _ in range(3):
                client.set_flow_run_state(run.id, Crashed(message="process killed (test)"), force=True)
                done = resume_crashed_once(
                    client, max_resumes=2, on_escalate=lambda fr, n: escalated.append((str(fr.id), n))
                )
                outcomes.append(
                    "resumed"
                    if str(run.id) in done["resumed"]
                    else "escalated"
                    if str(run.id) in done["escalated"]
                    else "untouched"
                )
                state = client.read_flow_run(run.id).state
            assert outcomes == ["resumed", "resumed", "escalated"]
            assert state is not None and state.type.value == "FAILED" and "escalated" in (state.message or "")
            assert escalated == [(str(run.id), 3)]
            client.delete_flow_run(run.id)


def test_the_api_and_ui_refuse_requests_without_the_credentials(api: dict[str, str]) -> None:
    """Whoever reaches the UI could resume a suspended run (approve a replacement): the server wants the
    generated basic-auth credentials, kept in a 0600 file and handed to clients through the environment."""
    import base64
    import stat
    import urllib.error
    import urllib.request

    from cassandra_recovery.lab.prefect_server import prefect_home

    url = api["PREFECT_API_URL"] + "/flows/filter"
    anonymous = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=10)  # noqa: S310 - loopback test URL
    assert refused.value.code == 401
    token = base64.b64encode(api["PREFECT_API_AUTH_STRING"].encode()).decode()
    allowed = urllib.request.Request(
        url, data=b"{}", headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(allowed, timeout=10) as r:  # noqa: S310
        assert r.status == 200
    mode = (prefect_home(Settings()) / "api-auth").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
