"""Suite-wide set-up: services are started by the tiers that need them and stopped at the end."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

from tests.area_timing import AreaTiming
from tests.faults import marker_problems

# Property tests: `ci` (bin/test sets HYPOTHESIS_PROFILE=ci; Hypothesis also picks it under CI=true) is
# derandomised, so a CI failure replays exactly; `explore` is for developers hunting new counterexamples.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, database=None)
hypothesis_settings.register_profile("explore", max_examples=2000, deadline=None)
_default_profile = "ci" if os.environ.get("CI", "").lower() == "true" else "default"
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default_profile))

KEEP = os.environ.get("CR_KEEP_SERVICES") == "1"  # developers: keep the lab between runs


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(AreaTiming(), "area-timing")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has one known area and only known faults: FAULTS.md and the time per area rely on it."""
    problems = []
    for item in items:
        areas = [m.args for m in item.iter_markers("area")]
        faults = [m.args for m in item.iter_markers("fault")]
        problems += marker_problems(item.nodeid, areas, faults)
    if problems:
        raise pytest.UsageError("test markers (see tests/faults.py):\n  " + "\n  ".join(problems))


@pytest.fixture(scope="session", autouse=True)
def _stop_services_at_end(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    yield
    if KEEP:
        return
    from cassandra_recovery.settings import Settings

    settings = Settings()
    if getattr(request.config, "_cr_lab_started", False):
        from cassandra_recovery.lab.cluster import Lab

        Lab(settings.lab).down()
    if getattr(request.config, "_cr_postgres_started", False):
        # Whatever ran on that PostgreSQL goes too (Prefect server, flow runs, a stack a test left behind), so
        # `pytest tests/contract` on its own leaves nothing running.
        from cassandra_recovery.commands.teardown import down

        down(settings, None, keep_data=True, prefect=True, postgres=True, say=lambda m: None)
