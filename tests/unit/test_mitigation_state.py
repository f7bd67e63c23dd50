"""Whether an incident's mitigation is in force, read from its timeline."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.mitigation_state import mitigation_in_force

pytestmark = pytest.mark.area("incident")

MITIGATED = {"kind": "mitigated", "data": {"policy": "degraded", "repairs_paused": True}}


def test_none_before_any_mitigation_and_the_newest_one_while_nothing_ends_it() -> None:
    assert mitigation_in_force([]) is None
    assert mitigation_in_force([{"kind": "opened", "data": {}}, {"kind": "mitigation_started", "data": {}}]) is None
    later = {"kind": "mitigated", "data": {"policy": "degraded", "note": "second"}}
    assert mitigation_in_force([MITIGATED, {"kind": "plan_set", "data": {}}]) == MITIGATED["data"]
    assert mitigation_in_force([MITIGATED, later]) == later["data"]


@pytest.mark.parametrize("end", ["policy_restored", "mitigation_lifted"])
def test_restored_or_lifted_ends_it_and_a_later_mitigation_starts_a_new_one(end: str) -> None:
    ended = [MITIGATED, {"kind": end, "data": {"policy": "normal"}}]
    assert mitigation_in_force(ended) is None
    assert mitigation_in_force([*ended, MITIGATED]) == MITIGATED["data"]
