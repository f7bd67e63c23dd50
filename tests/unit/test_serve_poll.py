"""`serve` polls the server for runs at the configured interval, not Prefect's 10 s default."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.area("incident")


def test_serve_polls_at_the_configured_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect

    import deployments.resume as resume
    import deployments.serve as served

    seen: dict[str, Any] = {}

    def fake_serve(*deployments: Any, **kwargs: Any) -> None:
        seen.update(kwargs, count=len(deployments))

    class _Stop:
        def set(self) -> None:
            seen["resumer_stopped"] = True

    monkeypatch.setenv("CASSANDRA_RECOVERY_PREFECT__RUNNER_POLL_S", "3")
    monkeypatch.setattr(prefect, "serve", fake_serve)
    monkeypatch.setattr(resume, "start_resumer", lambda max_resumes: _Stop())
    monkeypatch.setattr(served, "build_deployments", lambda: ["a", "b"])
    served.serve_all(limit=4)
    assert seen == {"limit": 4, "pause_on_shutdown": False, "query_seconds": 3, "count": 2, "resumer_stopped": True}


def test_the_default_poll_is_well_under_prefects_ten_seconds() -> None:
    from cassandra_recovery.settings import PrefectConfig

    assert PrefectConfig().runner_poll_s == 2
    with pytest.raises(ValueError):
        PrefectConfig(runner_poll_s=0)
