"""`nodetool toppartitions` parser on the captured Cassandra 5.0 fixture."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.toppartitions import (
    PartitionSample,
    QueryTime,
    parse_toppartitions,
)
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")


def _under_load() -> str:
    return load_fixture("toppartitions_under_load").stdout


def test_frequency_sections() -> None:
    top = parse_toppartitions(_under_load())
    assert len(top.reads) == 10
    assert top.reads[0] == PartitionSample("shop.orders", "order-000087", 7, 0)
    assert top.reads[1] == PartitionSample("shop.orders", "order-000041", 6, 0)
    assert top.reads[-1] == PartitionSample("shop.orders", "order-000490", 4, 0)
    assert sum(s.count for s in top.reads) == 50
    assert [s.partition for s in top.writes[:2]] == ["order-000386", "order-000282"]
    assert top.writes[0].count == 3 and top.writes[-1] == PartitionSample("shop.orders", "order-000155", 2, 0)
    assert {s.table for s in top.reads + top.writes} == {"shop.orders"}


def test_read_times_keep_the_spaces_inside_the_query() -> None:
    times = parse_toppartitions(_under_load()).read_times
    assert len(times) == 11
    assert times[0] == QueryTime(
        "SELECT amount_cents, customer, status, updated_at, version FROM shop.orders "
        "WHERE id = 'order-000043' LIMIT 5000 ALLOW FILTERING",
        9230,
    )
    assert [t.micros for t in times[-2:]] == [1528, 1475]
    assert all(t.query.endswith("ALLOW FILTERING") for t in times)


def test_count_sections_and_empty_ones() -> None:
    top = parse_toppartitions(_under_load())
    assert top.most_rows[0] == PartitionSample("shop.orders", "order-000041", 1, None)
    # the row sampler lists a partition once per read, so it can appear twice
    assert [s.partition for s in top.most_rows].count("order-000087") == 2
    assert top.max_mutation_size[0] == PartitionSample("shop.orders", "order-000241", 193, None)
    assert {s.count for s in top.max_mutation_size} == {193} and len(top.max_mutation_size) == 11
    # "Nothing recorded during sampling period..."
    assert top.most_tombstones == [] and top.most_sstables == [] and top.cas_contention == []
    assert top.sections == (
        "reads",
        "writes",
        "read_times",
        "most_rows",
        "most_tombstones",
        "most_sstables",
        "max_mutation_size",
        "cas_contention",
    )


def test_partition_keys_with_spaces_and_a_sampler_subset() -> None:
    text = (
        "Frequency of reads by partition:\n"
        "   Table   Partition  Count +/-\n"
        "   ks.t    a b 12     40    3  \n"
        "   ks.t    7          2     0  \n"
        "\n"
        "Frequency of CAS contention by partition:\n"
        "   Nothing recorded during sampling period...\n"
    )
    top = parse_toppartitions(text)
    assert top.reads == [PartitionSample("ks.t", "a b 12", 40, 3), PartitionSample("ks.t", "7", 2, 0)]
    assert top.writes == [] and top.sections == ("reads", "cas_contention")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "error: Failed to connect to '127.0.0.2:7199'\n",
        # unknown sampler title
        "Frequency of deletes by partition:\n   Nothing recorded during sampling period...\n",
        # a known title with another column layout
        "Frequency of reads by partition:\n   Table Partition Hits\n   ks.t k 3\n",
        # a row that lacks the +/- column
        "Frequency of reads by partition:\n   Table Partition Count +/-\n   ks.t k 3\n",
        # title without a table: truncated output
        "Frequency of reads by partition:\n",
    ],
)
def test_unknown_layouts_raise(text: str) -> None:
    with pytest.raises(ParseError, match="nodetool toppartitions") as err:
        parse_toppartitions(text)
    assert err.value.command == "nodetool toppartitions"


def test_truncated_fixture_raises() -> None:
    head = "".join(_under_load().splitlines(keepends=True)[:1])
    with pytest.raises(ParseError, match="truncated"):
        parse_toppartitions(head)
