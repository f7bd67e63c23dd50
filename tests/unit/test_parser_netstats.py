"""`nodetool netstats` parser on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.netstats import MessagePool, ReadRepairStats, parse_netstats
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

PLAN = "4fa3c2d0-e945-11f1-92b3-dd26c1266f39"


def test_all_up() -> None:
    n = parse_netstats(load_fixture("netstats_all_up").stdout)
    assert n.mode == "NORMAL"
    assert n.streams_active is False and n.streams == []
    assert n.read_repair == ReadRepairStats(attempted=0, mismatch_blocking=0, mismatch_background=0)
    assert n.pools == {
        "Large messages": MessagePool(active=None, pending=0, completed=2, dropped=0),
        "Small messages": MessagePool(active=None, pending=0, completed=7175, dropped=0),
        "Gossip messages": MessagePool(active=None, pending=0, completed=765, dropped=0),
    }


def test_node3_down_gossip_messages_pending() -> None:
    n = parse_netstats(load_fixture("netstats_node3_down").stdout)
    assert n.mode == "NORMAL" and not n.streams_active
    assert n.pools["Gossip messages"] == MessagePool(active=None, pending=3, completed=877, dropped=0)
    assert n.pools["Small messages"].completed == 9812


def test_active_stream_plan() -> None:
    text = (
        "Mode: JOINING\n"
        f"Bootstrap {PLAN}\n"
        "    /127.0.0.3:7000\n"
        "        Receiving 3 files, 1024 bytes total. Already received 1 files (33.33%), 12 bytes total (1.17%)\n"
        "Read Repair Statistics:\nAttempted: 1\nMismatch (Blocking): 2\nMismatch (Background): 3\n"
        "Pool Name                    Active   Pending      Completed   Dropped\n"
        "Large messages                  n/a         0              2         0\n"
    )
    n = parse_netstats(text)
    assert n.mode == "JOINING" and n.streams_active
    (plan,) = n.streams
    assert (plan.operation, plan.plan_id) == ("Bootstrap", PLAN)
    assert plan.details[0] == "/127.0.0.3:7000"
    assert n.read_repair == ReadRepairStats(1, 2, 3)


def test_starting_node_has_no_read_repair_section() -> None:
    n = parse_netstats("Mode: STARTING\nNot sending any streams.\n")
    assert n.read_repair is None and n.pools == {}


def test_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool netstats") as err:
        parse_netstats("nodetool: Failed to connect\n")
    assert err.value.command == "nodetool netstats"


def test_truncated_pool_table_raises() -> None:
    text = load_fixture("netstats_all_up").stdout.split("Large messages")[0]
    with pytest.raises(ParseError, match="pool table missing"):
        parse_netstats(text)
