"""Time per tier and runbook area beside the committed budget (tests/budget.toml): informational, never a gate.

Registered by tests/conftest.py; prints its table in the terminal summary of any session that ran tests.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults import TIERS, tier_of

BUDGET_FILE = Path(__file__).with_name("budget.toml")
Budget = dict[str, dict[str, float]]  # tier -> area -> seconds


@dataclass
class AreaTime:
    tests: int = 0
    seconds: float = 0.0


def load_budget(path: Path = BUDGET_FILE) -> Budget:
    """The budget table; empty when missing or unreadable (the table is informational, so never an error)."""
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {
        tier: {area: float(s) for area, s in areas.items() if isinstance(s, int | float)}
        for tier, areas in doc.items()
        if isinstance(areas, dict)
    }


def _row(tier: str, area: str, tests: int, seconds: float, budget: float | None) -> str:
    if budget is None:
        limit, note = "-", ""
    else:
        limit, note = f"{budget:g}", (f" over by {seconds - budget:.1f}s" if seconds > budget else "")
    return f"{tier:<8} | {area:<12} | {tests:>5} | {seconds:>8.1f} | {limit:>6}{note}"


def render_table(times: Mapping[tuple[str, str], AreaTime], budget: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One row per (tier, area) that ran, then the tier's total against the sum of its budget."""
    order = {t: i for i, t in enumerate(TIERS)}
    lines = [f"{'tier':<8} | {'area':<12} | {'tests':>5} | {'seconds':>8} | {'budget':>6}"]
    for tier in sorted({t for t, _ in times}, key=lambda t: (order.get(t, len(TIERS)), t)):
        tier_budget = budget.get(tier, {})
        rows = sorted((area, at) for (t, area), at in times.items() if t == tier)
        for area, at in rows:
            lines.append(_row(tier, area, at.tests, at.seconds, tier_budget.get(area)))
        total = AreaTime(sum(at.tests for _, at in rows), sum(at.seconds for _, at in rows))
        lines.append(_row(tier, "(total)", total.tests, total.seconds, sum(tier_budget.values()) or None))
    return lines


class AreaTiming:
    """Sums setup + call + teardown of each test by its tier and area marker."""

    def __init__(self, budget_file: Path = BUDGET_FILE) -> None:
        self.budget_file = budget_file
        self.area_of: dict[str, str] = {}
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            marker = item.get_closest_marker("area")
            self.area_of[item.nodeid] = str(marker.args[0]) if marker and marker.args else "(none)"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def times(self) -> dict[tuple[str, str], AreaTime]:
        out: dict[tuple[str, str], AreaTime] = defaultdict(AreaTime)
        for nodeid, seconds in self.seconds.items():
            at = out[(tier_of(nodeid), self.area_of.get(nodeid, "(none)"))]
            at.tests += 1
            at.seconds += seconds
        return dict(out)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.seconds:
            return
        terminalreporter.write_sep("=", "time per area (informational; budget in tests/budget.toml)")
        for line in render_table(self.times(), load_budget(self.budget_file)):
            terminalreporter.write_line(line)
