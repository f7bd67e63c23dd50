"""The per-area time table and its budget file (tests/budget.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.area_timing import BUDGET_FILE, AreaTime, AreaTiming, load_budget, render_table
from tests.faults import AREAS, TIERS

pytestmark = pytest.mark.area("lab")


def test_rows_per_tier_in_suite_order_with_totals_and_what_is_over() -> None:
    times = {
        ("cluster", "repair"): AreaTime(2, 400.0),
        ("unit", "intake"): AreaTime(90, 12.5),
        ("cluster", "hints"): AreaTime(1, 20.0),
    }
    budget = {"unit": {"intake": 16, "lab": 4}, "cluster": {"repair": 185, "hints": 35}}
    assert render_table(times, budget) == [
        "tier     | area         | tests |  seconds | budget",
        "unit     | intake       |    90 |     12.5 |     16",
        "unit     | (total)      |    90 |     12.5 |     20",
        "cluster  | hints        |     1 |     20.0 |     35",
        "cluster  | repair       |     2 |    400.0 |    185 over by 215.0s",
        "cluster  | (total)      |     3 |    420.0 |    220 over by 200.0s",
    ]


def test_areas_without_a_budget_show_a_dash() -> None:
    lines = render_table({("contract", "lab"): AreaTime(1, 0.25)}, {})
    assert lines[1:] == [
        "contract | lab          |     1 |      0.2 |      -",
        "contract | (total)      |     1 |      0.2 |      -",
    ]


def test_a_missing_or_broken_budget_file_is_no_budget(tmp_path: Path) -> None:
    assert load_budget(tmp_path / "absent.toml") == {}
    broken = tmp_path / "broken.toml"
    broken.write_text("[unit\n")
    assert load_budget(broken) == {}


def test_the_committed_budget_covers_known_areas_within_each_tier_target() -> None:
    budget = load_budget(BUDGET_FILE)
    assert set(budget) == set(TIERS)
    assert all(set(areas) <= set(AREAS) for areas in budget.values())
    targets = {"unit": 30, "contract": 60, "cluster": 25 * 60}
    assert {tier: sum(areas.values()) for tier, areas in budget.items()} == targets


def test_setup_call_and_teardown_add_up_per_test_and_area() -> None:
    timing = AreaTiming()
    timing.area_of = {"tests/unit/test_a.py::test_x": "hints"}

    class Report:
        def __init__(self, nodeid: str, duration: float) -> None:
            self.nodeid, self.duration = nodeid, duration

    for d in (0.5, 1.0, 0.25):
        timing.pytest_runtest_logreport(Report("tests/unit/test_a.py::test_x", d))  # type: ignore[arg-type]
    timing.pytest_runtest_logreport(Report("tests/cluster/test_b.py::test_y", 3.0))  # type: ignore[arg-type]
    assert timing.times() == {("unit", "hints"): AreaTime(1, 1.75), ("cluster", "(none)"): AreaTime(1, 3.0)}
