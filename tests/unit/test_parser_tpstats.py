"""`nodetool tpstats` parser on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.tpstats import PoolStats, parse_tpstats
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")


def test_all_up_has_no_drops() -> None:
    t = parse_tpstats(load_fixture("tpstats_all_up").stdout)
    assert t.pools["MutationStage"] == PoolStats(active=0, pending=0, completed=3721, blocked=0, all_time_blocked=0)
    assert t.pools["Native-Transport-Requests"].completed == 3502
    assert t.pools["Repair-Task"].completed == 5
    assert len(t.pools) == 23
    assert t.dropped_mutations == 0
    assert t.total_dropped == 0
    assert {"MUTATION_REQ", "COUNTER_MUTATION_REQ", "MUTATION_RSP", "HINT_REQ"} <= set(t.dropped)
    # Java prints large doubles in scientific notation.
    assert t.dropped["GOSSIP_DIGEST_SYN"].p99_micros == 36157190.0
    assert t.dropped["HINT_RSP"].max_micros == 61214.0


def test_dropped_mutations_after_thaw() -> None:
    t = parse_tpstats(load_fixture("tpstats_dropped_after_thaw").stdout)
    m = t.dropped["MUTATION_REQ"]
    assert m.dropped == 300
    assert (m.p50_micros, m.p95_micros, m.p99_micros, m.max_micros) == (5722.0, 182785.0, 263210.0, 3.615719e7)
    assert t.dropped["COUNTER_MUTATION_REQ"].dropped == 0
    assert t.dropped_mutations == 300
    assert t.total_dropped == 300
    # Pools appear lazily: node3 never ran a repair task, so that pool is absent.
    assert "Repair-Task" not in t.pools
    assert t.pools["MutationStage"].completed == 3622


def test_older_layout_without_percentiles() -> None:
    text = (
        "Pool Name                    Active   Pending      Completed   Blocked  All time blocked\n"
        "MutationStage                     0         0           1234         0                 0\n"
        "\n"
        "Message type           Dropped\n"
        "MUTATION                     7\n"
        "COUNTER_MUTATION             2\n"
        "READ                         1\n"
    )
    t = parse_tpstats(text)
    assert t.dropped_mutations == 9
    assert t.total_dropped == 10
    assert t.dropped["READ"].p99_micros is None


def test_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool tpstats") as err:
        parse_tpstats("nodetool: Failed to connect\n")
    assert err.value.command == "nodetool tpstats"


def test_truncated_before_dropped_table_raises() -> None:
    text = load_fixture("tpstats_all_up").stdout.split("Latencies waiting")[0]
    with pytest.raises(ParseError, match="no dropped message table"):
        parse_tpstats(text)


def test_row_missing_columns_raises() -> None:
    text = load_fixture("tpstats_all_up").stdout + "MUTATION_REQ                      0           0.0\n"
    with pytest.raises(ParseError, match="unexpected line"):
        parse_tpstats(text)
