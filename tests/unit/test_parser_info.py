"""`nodetool info` parser on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import math

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.info import parse_info
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

TOKEN_LINE = "Token                  : -9223372036854775808\n"


def test_all_up_on_node1() -> None:
    i = parse_info(load_fixture("info_all_up").stdout)
    assert i.host_id == "9cec5f1a-2bd1-4eb8-8b90-be5b88d65a6d"
    assert i.gossip_active is True and i.native_transport_active is True
    assert i.load == "265.28 KiB"
    assert i.uptime_seconds == 206
    assert (i.heap_used_mb, i.heap_max_mb) == (184.19, 512.0)
    assert (i.datacenter, i.rack) == ("dc1", "rack1")
    assert i.exceptions == 0
    assert i.percent_repaired == 0.0
    assert i.tokens == [-9223372036854775808]
    assert i.token_count == 1 and not i.tokens_elided
    assert i.raw["Generation No"] == "1795661896"
    assert i.raw["Network Cache"] == "size 8 MiB, overflow size: 0 bytes, capacity 32 MiB"
    assert i.raw["Bootstrap state"] == "COMPLETED"


def test_partitioned_node2_has_gossip_and_native_off() -> None:
    i = parse_info(load_fixture("info_node2_partitioned").stdout)
    assert i.host_id == "d6738b55-9b51-4c2d-9505-15cec9cc75d7"
    assert i.gossip_active is False and i.native_transport_active is False
    assert i.rack == "rack2"
    assert i.tokens == [-3074457345618258603]
    # Disabling gossip resets the advertised generation.
    assert i.raw["Generation No"] == "0"


def test_node2_while_node3_down() -> None:
    i = parse_info(load_fixture("info_node3_down").stdout)
    assert i.gossip_active is True and i.native_transport_active is True
    assert (i.uptime_seconds, i.heap_used_mb) == (236, 246.74)
    assert i.tokens == [-3074457345618258603]


def test_repeated_token_lines_with_dash_T() -> None:
    text = load_fixture("info_all_up").stdout.replace(
        TOKEN_LINE, "".join(f"Token                  : {t}\n" for t in (-5, 0, 17))
    )
    i = parse_info(text)
    assert i.tokens == [-5, 0, 17]
    assert i.token_count == 3
    assert i.raw["Token"] == "-5"


def test_elided_tokens_for_vnodes() -> None:
    text = load_fixture("info_all_up").stdout.replace(
        TOKEN_LINE, "Token                  : (invoke with -T/--tokens to see all 16 tokens)\n"
    )
    i = parse_info(text)
    assert i.tokens == []
    assert i.token_count == 16 and i.tokens_elided


def test_node_not_joined_has_no_tokens() -> None:
    text = load_fixture("info_all_up").stdout.replace(
        TOKEN_LINE, "Token                  : (node is not joined to the cluster)\n"
    )
    i = parse_info(text)
    assert (i.tokens, i.token_count, i.tokens_elided) == ([], 0, False)


def test_nan_percent_repaired() -> None:
    text = load_fixture("info_all_up").stdout.replace(": 0.0%", ": NaN%")
    assert math.isnan(parse_info(text).percent_repaired)


def test_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool info") as err:
        parse_info("nodetool: Failed to connect\n-- StackTrace --\n")
    assert err.value.command == "nodetool info"


def test_truncated_output_raises() -> None:
    head = "".join(load_fixture("info_all_up").stdout.splitlines(keepends=True)[:6])
    with pytest.raises(ParseError, match="missing .*Data Center"):
        parse_info(head)


def test_unknown_token_value_raises() -> None:
    text = load_fixture("info_all_up").stdout.replace(TOKEN_LINE, "Token                  : soon\n")
    with pytest.raises(ParseError, match="Token value"):
        parse_info(text)


def test_unknown_boolean_raises() -> None:
    text = load_fixture("info_all_up").stdout.replace("Gossip active          : true", "Gossip active          : yes")
    with pytest.raises(ParseError, match="Gossip active"):
        parse_info(text)
