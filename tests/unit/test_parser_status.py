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


# Token-per-node table: Status.java prints it when the ring holds no more tokens than there are datacenters.
LAB1 = "127.0.0.12"


def test_single_token_node_prints_its_token_instead_of_a_count() -> None:
    (row,) = parse_status(load_fixture("status_single_token_node").stdout)
    assert (row.address, row.code, row.datacenter, row.rack) == (LAB1, "UN", "dc1", "rack1")
    assert row.tokens == 1 and row.token == "-9223372036854775808"
    assert row.owns == 100.0 and row.load == "114.39 KiB"
    assert row.host_id == "545c35ed-6218-4708-9285-0cca157b4890"


def test_single_token_node_without_effective_ownership() -> None:
    # User keyspaces with RF 1 and RF 2, no keyspace given: "Owns" header, "?" and a trailing "Note:".
    (row,) = parse_status(load_fixture("status_single_token_node_mixed_replication").stdout)
    assert (row.address, row.code, row.tokens, row.token, row.owns) == (LAB1, "UN", 1, "-9223372036854775808", None)


def test_one_single_token_node_per_datacenter() -> None:
    rows = parse_status(load_fixture("status_single_token_per_dc").stdout)
    assert [(r.datacenter, r.address, r.code, r.tokens, r.token) for r in rows] == [
        ("dc1", LAB1, "UN", 1, "-9223372036854775808"),
        ("dc2", "127.0.0.13", "UN", 1, "-9223372036854775807"),
    ]
    assert rows[1].host_id == "74f97095-066f-4fd5-88fc-5375d4ef72f9"


def test_two_single_token_nodes_in_one_datacenter_keep_the_tokens_table() -> None:
    rows = parse_status(load_fixture("status_two_single_token_nodes").stdout)
    assert {r.address: (r.code, r.tokens, r.token) for r in rows} == {
        LAB1: ("UN", 1, None),
        "127.0.0.13": ("UN", 1, None),
    }


def test_row_of_the_other_table_raises() -> None:
    vnodes = load_fixture("status_all_up").stdout
    token_row = load_fixture("status_single_token_node").stdout.splitlines()[5]
    with pytest.raises(ParseError, match="unexpected line"):
        parse_status(vnodes + token_row + "\n")


def test_unknown_table_header_raises() -> None:
    text = load_fixture("status_single_token_node").stdout.replace("Token ", "Tokens", 1)
    with pytest.raises(ParseError, match="unexpected line '--  Address"):
        parse_status(text)


def test_row_before_any_table_header_raises() -> None:
    lines = load_fixture("status_single_token_node").stdout.splitlines(keepends=True)
    with pytest.raises(ParseError, match="unexpected line 'UN "):
        parse_status("".join(lines[:4] + lines[5:]))
