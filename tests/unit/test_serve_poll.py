"""`serve` polls the server for runs at the configured interval, not Prefect's 10 s default."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.area("incident")


def test_serve_polls_at_the_configured_interval(monkeypatch: pytest.MonkeyPatch) -> None:

    import deployments.serve as served

    seen: dict[str, Any] = {}
    monkeypatch.setattr(served, "ensure_zombie_automation", lambda window_s: "unchanged")

    def fake_serve(*deployments: Any, **kwargs: Any) -> None:
        seen.update(kwargs, count=len(deployments))

    class _Stop:
        def set(self) -> None:
            seen["resumer_stopped"] = True

    monkeypatch.setenv("CASSANDRA_RECOVERY_PREFECT__RUNNER_POLL_S", "3")
    monkeypatch.setattr(served, "serve", fake_serve)
    monkeypatch.setattr(served, "start_resumer", lambda max_resumes: _Stop())
    monkeypatch.setattr(served, "build_deployments", lambda: ["a", "b"])
    served.serve_all(limit=4)
    assert seen == {"limit": 4, "pause_on_shutdown": False, "query_seconds": 3, "count": 2, "resumer_stopped": True}


def test_the_default_poll_is_well_under_prefects_ten_seconds() -> None:
    from cassandra_recovery.settings import PrefectConfig

    assert PrefectConfig().runner_poll_s == 2
    with pytest.raises(ValueError):
        PrefectConfig(runner_poll_s=0)


def test_serve_rides_out_the_api_going_away_and_raises_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's runner gives up after three failed polls (a PostgreSQL restart takes the API with it): `serve`
    waits for the API and serves again instead of exiting and leaving incidents without a resumer."""
    import httpx

    import deployments.serve as served

    outcomes: list[BaseException | None] = [
        ExceptionGroup("task group", [RuntimeError("Service exceeded error threshold.")]),
        httpx.ConnectError("connection refused"),
        None,
    ]
    calls: list[str] = []

    def fake_serve(*deployments: Any, **kwargs: Any) -> None:
        calls.append("serve")
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(served, "ensure_zombie_automation", lambda window_s: "unchanged")
    monkeypatch.setattr(served, "serve", fake_serve)
    monkeypatch.setattr(served, "start_resumer", lambda max_resumes: type("S", (), {"set": lambda self: None})())
    monkeypatch.setattr(served, "build_deployments", lambda: [])
    monkeypatch.setattr(served, "wait_for_api", lambda settings: calls.append("waited"))
    served.serve_all()
    assert calls == ["serve", "waited", "serve", "waited", "serve"]

    outcomes[:] = [ValueError("a bug, not an outage")]
    with pytest.raises(ValueError, match="a bug"):
        served.serve_all()
    request = httpx.Request("GET", "http://x")
    assert served.api_gave_up(httpx.HTTPStatusError("503", request=request, response=httpx.Response(503)))
    assert not served.api_gave_up(httpx.HTTPStatusError("404", request=request, response=httpx.Response(404)))


def test_the_runners_poll_skips_a_round_when_the_api_is_away_and_raises_anything_else() -> None:
    """Prefect's runner gives up after three failed polls and its teardown kills every run it started: the poll
    is wrapped so an API outage is a skipped round. Fails loudly if the installed Prefect has no such poll."""
    import asyncio

    import httpx
    from prefect.runner._scheduled_run_poller import ScheduledRunPoller

    import deployments.serve as served

    before = ScheduledRunPoller._get_and_submit_flow_runs
    try:
        assert served.ride_out_api_outages() and served.ride_out_api_outages()
        assert getattr(ScheduledRunPoller._get_and_submit_flow_runs, "_rides_out_outages", False)
    finally:
        ScheduledRunPoller._get_and_submit_flow_runs = before  # type: ignore[method-assign]
    request = httpx.Request("GET", "http://x")
    outcomes: list[BaseException | None] = [
        httpx.ConnectError("refused"),
        httpx.HTTPStatusError("500", request=request, response=httpx.Response(500)),
        None,
        httpx.HTTPStatusError("403", request=request, response=httpx.Response(403)),
    ]
    polls: list[str] = []

    async def poll() -> str:
        polls.append("poll")
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "submitted"

    wrapped = served.skip_api_outages(poll)
    assert [asyncio.run(wrapped()) for _ in range(3)] == [None, None, "submitted"]
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(wrapped())  # 403: a real error, raised
    assert len(polls) == 4
