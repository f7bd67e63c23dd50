"""Hot-spot arithmetic and the report's findings, on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from cassandra_recovery.logic.hotspots import (
    HotspotReport,
    Thresholds,
    build_report,
    format_bytes,
    key_distribution,
    owner_of,
    parse_size_bytes,
    skew,
)
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN, token_of
from cassandra_recovery.logic.tokens import balanced_tokens
from cassandra_recovery.parsers.status import StatusRow, parse_status
from cassandra_recovery.parsers.tablehistograms import TableHistograms, parse_tablehistograms
from cassandra_recovery.parsers.toppartitions import TopPartitions, parse_toppartitions
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

NODES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
# the lab's ring: one balanced token per node
LAB_RING = [(tokens[0], node) for tokens, node in zip(balanced_tokens(3), NODES, strict=True)]


def test_skew() -> None:
    assert skew([10, 10, 10]) == 1.0
    assert skew([0, 0, 30]) == 3.0
    assert skew([1, 2, 3]) == pytest.approx(1.5)
    assert skew([0, 0]) == 1.0  # nothing anywhere is an even spread
    assert skew(v for v in [5.0]) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        skew([])
    with pytest.raises(ValueError, match="non-negative"):
        skew([1, -1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("107.94 KiB", 110531),
        ("107.95KiB", 110541),
        ("0 bytes", 0),
        ("512 B", 512),
        ("1.5 MiB", 1572864),
        ("2 GiB", 2 * 2**30),
        ("1.25 TiB", int(1.25 * 2**40)),
    ],
)
def test_parse_size_bytes(text: str, expected: int) -> None:
    assert parse_size_bytes(text) == expected


@pytest.mark.parametrize("text", ["?", "n/a", "12 KB", "KiB", "-1 KiB", ""])
def test_parse_size_bytes_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size_bytes(text)


def test_format_bytes() -> None:
    assert format_bytes(86) == "86 bytes"
    assert format_bytes(110531) == "107.94 KiB"
    assert format_bytes(100 * 2**20) == "100.00 MiB"


def test_owner_of_takes_the_first_ring_token_at_or_after() -> None:
    ring = [(300, "c"), (100, "a"), (200, "b")]  # any order
    assert owner_of(150, ring) == "b"
    assert owner_of(200, ring) == "b"  # a token equal to a ring token belongs to that node: (100, 200]
    assert owner_of(201, ring) == "c"
    assert owner_of(100, ring) == "a"
    assert owner_of(-5, ring) == "a"
    # past the last ring token: wraps around to the first
    assert owner_of(301, ring) == "a"
    assert owner_of(MAX_TOKEN, ring) == "a"
    assert owner_of(MIN_TOKEN, ring) == "a"
    with pytest.raises(ValueError, match="no tokens"):
        owner_of(1, [])


def test_owner_of_on_the_lab_ring() -> None:
    first, second, third = (t for t, _ in LAB_RING)
    assert first == MIN_TOKEN
    assert owner_of(first, LAB_RING) == NODES[0]
    assert owner_of(first + 1, LAB_RING) == NODES[1]
    assert owner_of(second, LAB_RING) == NODES[1]
    assert owner_of(third, LAB_RING) == NODES[2]
    assert owner_of(third + 1, LAB_RING) == NODES[0]  # wraps to the node holding MIN_TOKEN


def _brute_owner(token: int, ring: list[tuple[int, str]]) -> str:
    at_or_after = [(t, n) for t, n in ring if t >= token]
    return min(at_or_after or ring)[1]


def test_key_distribution_against_a_three_node_ring() -> None:
    keys = [f"order-{i:06d}" for i in range(3000)]
    dist = key_distribution(keys, LAB_RING)
    assert list(dist) == NODES and sum(dist.values()) == 3000
    expected = dict.fromkeys(NODES, 0)
    for k in keys:
        expected[_brute_owner(token_of(k), LAB_RING)] += 1
    assert dist == expected
    assert skew(dist.values()) < 1.1  # Murmur3 spreads sequential ids evenly over balanced tokens


def test_key_distribution_lists_nodes_without_keys() -> None:
    # b owns only MIN_TOKEN, which no key hashes to (Cassandra maps that hash to MAX_TOKEN)
    ring = [(MAX_TOKEN, "a"), (MIN_TOKEN, "b")]
    assert key_distribution(["x", "y", "z"], ring) == {"a": 3, "b": 0}
    assert key_distribution([], ring) == {"a": 0, "b": 0}


def _fixtures() -> tuple[list[StatusRow], TopPartitions, TableHistograms]:
    return (
        parse_status(load_fixture("status_keyspace_rf3").stdout),
        parse_toppartitions(load_fixture("toppartitions_under_load").stdout),
        parse_tablehistograms(load_fixture("tablehistograms_flushed").stdout),
    )


def _report(
    status: list[StatusRow] | None = None,
    top: TopPartitions | None = None,
    hist: TableHistograms | None = None,
    ring: list[tuple[int, str]] | None = None,
    keys: list[str] | None = None,
    **thresholds: Any,
) -> HotspotReport:
    f_status, f_top, f_hist = _fixtures()
    return build_report(
        keyspace="shop",
        table="orders",
        sampled_node=NODES[0],
        sample_ms=5000,
        status=status or f_status,
        top=top or f_top,
        histograms=hist or f_hist,
        ring=ring or LAB_RING,
        keys=keys,
        thresholds=Thresholds(**thresholds),
    )


def test_report_of_the_even_lab_has_no_findings() -> None:
    r = _report(keys=[f"order-{i:06d}" for i in range(500)])
    assert r.ownership == dict.fromkeys(["127.0.0.3", "127.0.0.2", "127.0.0.4"], 100.0)
    assert r.ownership_skew == 1.0  # RF 3 on 3 nodes: everyone owns everything
    assert r.loads == {"127.0.0.3": 110531, "127.0.0.2": 110541, "127.0.0.4": 110531}
    assert r.load_skew == pytest.approx(1.0, abs=1e-4)
    assert r.top_reads[0].partition == "order-000087" and len(r.top_reads) == 10
    assert r.top_writes[0].partition == "order-000386"
    assert (r.partition_size_p99_bytes, r.partition_size_max_bytes) == (86.0, 86.0)
    assert (r.cell_count_p99, r.cell_count_max) == (5.0, 5.0)
    assert (r.read_latency_p99_micros, r.write_latency_p99_micros) == (2299.0, 1597.0)
    assert r.key_distribution is not None and sum(r.key_distribution.values()) == 500
    assert r.key_skew is not None and r.key_skew < 1.5
    assert r.findings == [] and r.notes == []
    doc = json.loads(json.dumps(r.as_dict()))
    assert doc["top_reads"][0] == {"table": "shop.orders", "partition": "order-000087", "count": 7, "error": 0}
    assert doc["thresholds"]["skew"] == 1.5


def test_hot_partition_finding_follows_the_share_threshold() -> None:
    # 7 of the 50 reads in the sampled top 10: 14%
    assert _report(hot_share=0.15).findings == []
    findings = _report(hot_share=0.14).findings
    assert findings == [
        "partition order-000087 took 7 of 50 sampled reads (14.0%) on 127.0.0.2, over the 14% threshold"
    ]
    assert _report(hot_share=0.14, hot_min_count=8).findings == []
    writes = _report(hot_share=0.1, hot_min_count=3).findings
    assert "partition order-000386 took 3 of 25 sampled writes (12.0%) on 127.0.0.2, over the 10% threshold" in writes


def test_load_and_ownership_skew_findings() -> None:
    status, _, _ = _fixtures()
    loads = {"127.0.0.3": "100 KiB", "127.0.0.2": "100 KiB", "127.0.0.4": "500 KiB"}
    owns = {"127.0.0.3": 50.0, "127.0.0.2": 25.0, "127.0.0.4": 25.0}
    skewed = [replace(r, load=loads[r.address], owns=owns[r.address]) for r in status]
    r = _report(status=skewed)
    assert r.load_skew == pytest.approx(500 / (700 / 3))
    assert r.ownership_skew == pytest.approx(1.5)
    assert r.findings == [
        "load skew 2.14 > 1.5 threshold in dc1: 127.0.0.4 holds 500.00 KiB of 700.00 KiB (mean 233.33 KiB)"
    ]
    assert _report(status=skewed, min_load_bytes=2**20).findings == []  # too little data to matter
    assert _report(status=skewed, skew=1.4).findings[0] == (
        "ownership skew 1.50 > 1.4 threshold in dc1: 127.0.0.3 owns 50.0% of shop (effective) vs a mean of 33.3%"
    )


def test_unknown_ownership_and_down_nodes_are_notes() -> None:
    status, _, _ = _fixtures()
    rows = [replace(r, owns=None, load="?", up=r.address != "127.0.0.4") for r in status]
    r = _report(status=rows)
    assert r.ownership_skew is None and r.load_skew is None and r.findings == []
    assert r.notes == [
        "127.0.0.4 is DN: its load and ownership may be stale",
        "effective ownership unknown for keyspace shop",
    ]


def test_partition_size_and_cell_count_findings() -> None:
    _, _, hist = _fixtures()
    big = replace(hist.rows["Max"], partition_size_bytes=float(300 * 2**20), cell_count=2_000_000.0)
    r = _report(hist=replace(hist, rows={**hist.rows, "Max": big}))
    assert r.findings == [
        "largest partition of shop.orders is 300.00 MiB (p99 86 bytes) > 100.00 MiB threshold on 127.0.0.2",
        "largest partition of shop.orders has 2000000 cells (p99 5.0) > 100000 threshold on 127.0.0.2",
    ]
    assert _report(partition_bytes=80).findings[0].startswith("largest partition of shop.orders is 86 bytes")


def test_no_sstables_is_a_note_not_a_finding() -> None:
    hist = parse_tablehistograms(load_fixture("tablehistograms_no_sstables").stdout)
    r = _report(hist=hist, partition_bytes=1, cell_count=1)
    assert r.no_sstables and r.partition_size_max_bytes is None and r.findings == []
    assert r.notes == ["no SSTables of shop.orders on 127.0.0.2: partition size and cell count unknown until a flush"]


def test_key_skew_finding() -> None:
    # c owns (-2^62+1, MAX]: three quarters of the ring; b a single token
    ring = [(-(2**62), "a"), (-(2**62) + 1, "b"), (MAX_TOKEN, "c")]
    keys = [f"order-{i:06d}" for i in range(2000)]
    r = _report(ring=ring, keys=keys)
    assert r.key_distribution is not None and r.key_distribution["b"] == 0
    assert r.key_skew is not None and 2.0 < r.key_skew < 2.5
    (finding,) = r.findings
    n = r.key_distribution["c"]
    assert finding == (
        f"workload key skew {r.key_skew:.2f} > 1.5 threshold: c is primary owner of {n} of 2000 keys "
        f"({100 * n / 2000:.1f}%)"
    )


def test_empty_samples_are_a_note() -> None:
    r = _report(top=TopPartitions(sections=("reads", "writes")))
    assert r.top_reads == [] and r.findings == []
    assert r.notes == ["no reads or writes of shop.orders sampled on 127.0.0.2 in 5000 ms"]
