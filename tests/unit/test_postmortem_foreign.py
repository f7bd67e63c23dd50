"""The post-mortem names the repairs started elsewhere that the assessment and the repair reports saw."""

from __future__ import annotations

from typing import Any

import pytest

from cassandra_recovery.logic.postmortem import build_postmortem, render_markdown, render_slack_summary
from tests.unit.test_postmortem import NODE, incident, timeline

pytestmark = pytest.mark.area("incident")

REAPER = {"id": "r-1", "described": "incremental repair r-1, coordinator 127.0.0.2, keyspace shop (seen on 127.0.0.2)"}
CRON = {"id": "c-2", "described": "full repair c-2, coordinator 127.0.0.4, keyspace shop (seen on 127.0.0.4)"}


def _incident(plan_foreign: list[dict[str, Any]]) -> dict[str, Any]:
    inc = incident("resolved")
    inc["plan"] = inc["plan"] | {"foreign_repairs": plan_foreign}
    return inc


def test_foreign_repairs_of_the_plan_and_the_repair_report_are_named_once_each() -> None:
    events = timeline(
        (0, "opened", {"nodes": [NODE]}),
        (90, "repaired", {"segments": 2, "ran": 0, "escalated": True, "foreign_repairs": [REAPER, CRON]}),
    )
    pm = build_postmortem(_incident([REAPER]), events)
    assert pm.foreign_repairs == (REAPER["described"], CRON["described"])
    md = render_markdown(pm)
    section = md.split("## Repairs started elsewhere", 1)[1].split("##", 1)[0]
    assert f"- {REAPER['described']}" in section and f"- {CRON['described']}" in section
    assert "Repairs started elsewhere: 2" in render_slack_summary(pm)


def test_without_foreign_repairs_the_section_is_left_out() -> None:
    pm = build_postmortem(_incident([]), timeline((0, "opened", {"nodes": [NODE]})))
    assert pm.foreign_repairs == ()
    assert "started elsewhere" not in render_markdown(pm)
    assert "started elsewhere" not in render_slack_summary(pm)
