"""Hint command parsers (statushandoff, listpendinghints, getmaxhintwindow) on the captured fixtures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.hints import (
    PendingHints,
    parse_getmaxhintwindow,
    parse_listpendinghints,
    parse_statushandoff,
)
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

NODE3_HOST_ID = "a952f1bc-b270-452d-949e-916f4d6092c4"
HINT_TIME = datetime(2026, 11, 26, 3, 1, 49, 807000, tzinfo=UTC)


def test_statushandoff_running() -> None:
    assert parse_statushandoff(load_fixture("statushandoff_running").stdout) is True


def test_statushandoff_disabled() -> None:
    assert parse_statushandoff(load_fixture("statushandoff_disabled").stdout) is False


def test_statushandoff_paused_still_says_running() -> None:
    fixture = load_fixture("statushandoff_paused")
    assert fixture.scenario == "hint delivery paused on node1"
    assert parse_statushandoff(fixture.stdout) is True


def test_statushandoff_with_disabled_dc_is_refused() -> None:
    with pytest.raises(ParseError, match="per-datacenter"):
        parse_statushandoff("Hinted handoff is running\nData center dc2 is disabled\n")


def test_statushandoff_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool statushandoff") as err:
        parse_statushandoff("Hinted handoff is sleeping\n")
    assert err.value.command == "nodetool statushandoff"


def test_no_pending_hints() -> None:
    assert parse_listpendinghints(load_fixture("listpendinghints_none").stdout) == []


def test_pending_hints_for_frozen_node3() -> None:
    assert parse_listpendinghints(load_fixture("listpendinghints_node3_down").stdout) == [
        PendingHints(
            host_id=NODE3_HOST_ID,
            address="127.0.0.4",
            port=7000,
            rack="rack3",
            dc="dc1",
            status="DOWN",
            total_files=1,
            newest=HINT_TIME,
            oldest=HINT_TIME,
        ),
    ]


def test_pending_hints_after_thaw_node3_up_but_hints_not_yet_delivered() -> None:
    (entry,) = parse_listpendinghints(load_fixture("listpendinghints_after_thaw").stdout)
    assert (entry.host_id, entry.address, entry.port) == (NODE3_HOST_ID, "127.0.0.4", 7000)
    assert entry.status == "UP"
    assert entry.total_files == 1
    assert entry.oldest == entry.newest == HINT_TIME


def test_pending_hints_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool listpendinghints") as err:
        parse_listpendinghints("no hints today\n")
    assert err.value.command == "nodetool listpendinghints"


def test_pending_hints_truncated_table_raises() -> None:
    header = load_fixture("listpendinghints_node3_down").stdout.splitlines()[0]
    with pytest.raises(ParseError, match="header without rows"):
        parse_listpendinghints(header + "\n")
    with pytest.raises(ParseError, match="unexpected row"):
        parse_listpendinghints(header + "\n" + NODE3_HOST_ID + " 127.0.0.4:7000 rack3 dc1\n")


def test_getmaxhintwindow_default_is_three_hours() -> None:
    assert parse_getmaxhintwindow(load_fixture("getmaxhintwindow_default").stdout) == 3 * 3600 * 1000


def test_getmaxhintwindow_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool getmaxhintwindow"):
        parse_getmaxhintwindow("Current max hint window: 3 hours\n")
