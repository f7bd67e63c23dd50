"""`nodetool tablehistograms` parser on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.tablehistograms import HistogramRow, parse_tablehistograms
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

LABELS = ["50%", "75%", "95%", "98%", "99%", "Min", "Max"]


def test_flushed_table() -> None:
    h = parse_tablehistograms(load_fixture("tablehistograms_flushed").stdout)
    assert (h.keyspace, h.table, h.no_sstables, h.warnings) == ("shop", "orders", False, ())
    assert list(h.rows) == LABELS
    assert h.row("99%") == HistogramRow("99%", 2299.0, 1597.0, 0.0, 86.0, 5.0)
    assert h.row("Min") == HistogramRow("Min", 36.0, 11.0, 0.0, 73.0, 5.0)
    assert h.row("Max") == HistogramRow("Max", 6866.0, 61214.0, 0.0, 86.0, 5.0)
    assert h.row("95%").read_latency_micros == 1109.0


def test_no_sstables_gives_none_sizes() -> None:
    h = parse_tablehistograms(load_fixture("tablehistograms_no_sstables").stdout)
    assert (h.keyspace, h.table, h.no_sstables) == ("shop", "orders", True)
    assert all(r.partition_size_bytes is None and r.cell_count is None for r in h.rows.values())
    assert h.row("50%").read_latency_micros == 215.0
    assert h.row("99%").read_latency_micros == 1916.0
    assert h.row("Max").write_latency_micros == 61214.0


def test_columns_are_mapped_by_header_name() -> None:
    # 3.x printed SSTables first and swapped the latencies
    text = (
        "ks/t histograms\n"
        "Percentile  SSTables     Write Latency      Read Latency    Partition Size        Cell Count\n"
        "                              (micros)          (micros)           (bytes)                  \n"
        + "".join(f"{label:<10}{1.0:>8.2f}{20.0:>18.2f}{30.0:>18.2f}{'NaN':>18}{5:>18}\n" for label in LABELS)
    )
    h = parse_tablehistograms(text)
    assert h.row("Max") == HistogramRow("Max", 30.0, 20.0, 1.0, None, 5.0)


def test_row_lookup_names_the_table() -> None:
    h = parse_tablehistograms(load_fixture("tablehistograms_flushed").stdout)
    with pytest.raises(KeyError, match="shop.orders"):
        h.row("99.9%")


def _flushed_lines() -> list[str]:
    return load_fixture("tablehistograms_flushed").stdout.splitlines(keepends=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "error: Keyspace nope does not exist\n",
        "".join(_flushed_lines()[:6]),  # rows missing
        "".join(_flushed_lines()).replace("Cell Count", "Cell Total"),  # unknown column
        "".join(_flushed_lines()).replace("      5\n", "\n", 1),  # a short row
        "".join(_flushed_lines()) + "shop/other histograms\n",  # several tables
        "".join(_flushed_lines()[1:]),  # no title
    ],
)
def test_unknown_layouts_raise(text: str) -> None:
    with pytest.raises(ParseError, match="nodetool tablehistograms") as err:
        parse_tablehistograms(text)
    assert err.value.command == "nodetool tablehistograms"
