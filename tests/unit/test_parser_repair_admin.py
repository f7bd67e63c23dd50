"""`nodetool repair_admin list` and the validations of `nodetool compactionstats`, on captured 5.0 output of
repairs started by hand (scripts/capture_foreign_repairs.py)."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.compactionstats import parse_compactionstats
from cassandra_recovery.parsers.repair_admin import ConsistentSession, parse_repair_admin_list
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")


@pytest.mark.parametrize(
    "name", ["repair_admin_list_none", "repair_admin_list_during_full", "repair_admin_list_incremental_done"]
)
def test_no_session_is_an_empty_list(name: str) -> None:
    # a full repair is no consistent session: repair_admin never shows it
    assert parse_repair_admin_list(load_fixture(name).stdout) == []


def test_a_participant_shows_the_running_incremental_session_of_another_coordinator() -> None:
    (s,) = parse_repair_admin_list(load_fixture("repair_admin_list_incremental_node1").stdout)
    assert s == ConsistentSession(
        "bd8e6b60-f257-11f1-ad98-23db90c71a3c", "REPAIRING", 2, "127.0.0.33", ("127.0.0.32", "127.0.0.33")
    )
    assert s.active


def test_finished_sessions_listed_with_all_are_not_active() -> None:
    sessions = parse_repair_admin_list(load_fixture("repair_admin_list_all_after_incremental").stdout)
    assert len(sessions) == 11 and {s.state for s in sessions} == {"FINALIZED"}
    assert not any(s.active for s in sessions)
    assert all(s.coordinator == "127.0.0.33" for s in sessions)


def test_an_unknown_repair_admin_layout_raises() -> None:
    with pytest.raises(ParseError, match="repair_admin list"):
        parse_repair_admin_list("session | status\nabc | RUNNING\n")


def test_a_validation_is_an_active_task() -> None:
    stats = parse_compactionstats(load_fixture("compactionstats_validation_incremental_node1").stdout)
    (v,) = stats.validations
    assert (v.id, v.kind, v.keyspace, v.table) == (
        "bd9681b0-f257-11f1-a6b8-73eeeb366404",
        "Validation",
        "foreign",
        "kv",
    )
    assert v.progress_pct == pytest.approx(81.39)
    assert stats.pending == 1


def test_an_idle_node_has_no_active_task() -> None:
    stats = parse_compactionstats(load_fixture("compactionstats_idle").stdout)
    assert stats.pending == 0 and stats.active == () and stats.validations == ()


def test_compactionstats_without_pending_tasks_raises() -> None:
    with pytest.raises(ParseError, match="compactionstats"):
        parse_compactionstats("Compaction Executor: nothing\n")
