"""`nodetool status` parser on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.status import parse_status
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

NODE1, NODE2, NODE3 = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def _codes(name: str) -> dict[str, str]:
    return {row.address: row.code for row in parse_status(load_fixture(name).stdout)}


def test_all_up() -> None:
    rows = parse_status(load_fixture("status_all_up").stdout)
    assert {r.address: r.code for r in rows} == {NODE1: "UN", NODE2: "UN", NODE3: "UN"}
    by_addr = {r.address: r for r in rows}
    assert by_addr[NODE1].host_id == "9cec5f1a-2bd1-4eb8-8b90-be5b88d65a6d"
    assert by_addr[NODE3].host_id == "a952f1bc-b270-452d-949e-916f4d6092c4"
    assert {r.rack for r in rows} == {"rack1", "rack2", "rack3"}
    assert all(r.datacenter == "dc1" and r.tokens == 1 and r.owns == 100.0 for r in rows)
    assert by_addr[NODE1].load == "265.28 KiB"


def test_node3_down() -> None:
    assert _codes("status_node3_down") == {NODE1: "UN", NODE2: "UN", NODE3: "DN"}


def test_node2_partitioned_seen_from_node1() -> None:
    assert _codes("status_node2_partitioned") == {NODE1: "UN", NODE2: "DN", NODE3: "UN"}


def test_partitioned_node2_still_sees_everyone_up() -> None:
    # With its own gossip disabled node2 keeps its last view: all UN, although node1 sees it DN.
    assert _codes("status_seen_from_partitioned_node2") == {NODE1: "UN", NODE2: "UN", NODE3: "UN"}


def test_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool status") as err:
        parse_status("error: Failed to connect to '127.0.0.2:7199'\n")
    assert err.value.command == "nodetool status"


def test_truncated_table_raises() -> None:
    head = "".join(load_fixture("status_all_up").stdout.splitlines(keepends=True)[:5])
    with pytest.raises(ParseError, match="nodetool status"):
        parse_status(head)
