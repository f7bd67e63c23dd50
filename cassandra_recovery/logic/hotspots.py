"""Hot-spot arithmetic (pure): skew, ring ownership of keys, and a report of what stands out and why."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cassandra_recovery.logic.murmur3 import token_of
from cassandra_recovery.parsers.status import StatusRow
from cassandra_recovery.parsers.tablehistograms import TableHistograms
from cassandra_recovery.parsers.toppartitions import PartitionSample, TopPartitions

Ring = Sequence[tuple[int, str]]  # (token, node address), any order

_UNITS = {"bytes": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
_SIZE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>bytes|B|KiB|MiB|GiB|TiB|PiB)$")


def skew(values: Iterable[float]) -> float:
    """Max over mean: 1.0 for a perfectly even spread, N when one of N members holds everything."""
    vals = list(values)
    if not vals:
        raise ValueError("skew needs at least one value")
    if any(v < 0 for v in vals):
        raise ValueError(f"skew needs non-negative values, got {vals}")
    mean = sum(vals) / len(vals)
    return 1.0 if mean == 0 else max(vals) / mean


def parse_size_bytes(text: str) -> int:
    """'107.94 KiB' -> 110530: the sizes nodetool prints (binary units, or 'bytes')."""
    m = _SIZE.match(text.strip())
    if m is None:
        raise ValueError(f"not a size: {text!r} (expected e.g. '107.94 KiB', '3 MiB', '512 bytes')")
    return round(float(m.group("n")) * _UNITS[m.group("unit")])


def format_bytes(n: float) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.2f} {unit}"
    return f"{n:.0f} bytes"


def _sorted_ring(ring: Ring) -> tuple[list[int], list[str]]:
    if not ring:
        raise ValueError("the ring has no tokens")
    pairs = sorted(ring)
    return [t for t, _ in pairs], [n for _, n in pairs]


def _owner(token: int, points: list[int], owners: list[str]) -> str:
    i = bisect.bisect_left(points, token)
    return owners[i if i < len(points) else 0]  # past the last ring token: wrap to the first


def owner_of(token: int, ring: Ring) -> str:
    """Primary owner of a token: the node of the first ring token >= it, wrapping around (Cassandra's rule)."""
    return _owner(token, *_sorted_ring(ring))


def key_distribution(keys: Iterable[str], ring: Ring) -> dict[str, int]:
    """Text partition keys per primary-range owner; every node of the ring is listed, with 0 if it owns none."""
    points, owners = _sorted_ring(ring)
    counts = dict.fromkeys(sorted(set(owners)), 0)
    for key in keys:
        counts[_owner(token_of(key), points, owners)] += 1
    return counts


@dataclass(frozen=True)
class Thresholds:
    skew: float = 1.5  # ownership, load and key-distribution max/mean
    min_load_bytes: int = 0  # no load-skew finding while the heaviest node holds less than this
    hot_share: float = 0.25  # a partition's share of the sampled top-k reads (or writes)
    hot_min_count: int = 5  # ...and at least this many sampled accesses
    partition_bytes: int = 100 * 2**20  # Cassandra's large-partition warning default
    cell_count: int = 100_000


@dataclass(frozen=True)
class HotspotReport:
    keyspace: str
    table: str
    sampled_node: str
    sample_ms: int
    ownership: dict[str, float | None]  # effective ownership % for the keyspace, by address
    ownership_skew: float | None  # worst datacenter; None when ownership is unknown
    loads: dict[str, int | None]  # bytes, by address
    load_skew: float | None
    top_reads: list[PartitionSample]
    top_writes: list[PartitionSample]
    partition_size_p99_bytes: float | None
    partition_size_max_bytes: float | None
    cell_count_p99: float | None
    cell_count_max: float | None
    read_latency_p99_micros: float | None
    write_latency_p99_micros: float | None
    no_sstables: bool
    key_distribution: dict[str, int] | None  # workload keys per primary-range owner
    key_skew: float | None
    thresholds: Thresholds
    findings: list[str] = field(default_factory=list)  # over a threshold
    notes: list[str] = field(default_factory=list)  # caveats about the figures

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Spread:
    skew: float
    datacenter: str
    heaviest: str  # address
    value: float  # the heaviest node's value
    total: float  # over its datacenter
    mean: float


def _dc_skew(rows: Sequence[StatusRow], values: dict[str, float]) -> _Spread | None:
    """The worst datacenter among those whose rows all have a value; None when there is none."""
    worst: _Spread | None = None
    for dc in sorted({r.datacenter for r in rows}):
        members = [r.address for r in rows if r.datacenter == dc]
        if not all(a in values for a in members):
            continue
        vals = [values[a] for a in members]
        heaviest = max(members, key=lambda a: values[a])
        spread = _Spread(skew(vals), dc, heaviest, values[heaviest], sum(vals), sum(vals) / len(vals))
        if worst is None or spread.skew > worst.skew:
            worst = spread
    return worst


def _hot(samples: list[PartitionSample], kind: str, node: str, th: Thresholds) -> list[str]:
    # nodetool prints only the top-k partitions, so the share is of the top-k sum (an upper bound).
    total = sum(s.count for s in samples)
    return [
        f"partition {s.partition} took {s.count} of {total} sampled {kind} ({100 * s.count / total:.1f}%) "
        f"on {node}, over the {100 * th.hot_share:.0f}% threshold"
        for s in samples
        if s.count >= th.hot_min_count and s.count / total >= th.hot_share
    ]


def _loads(rows: Sequence[StatusRow]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for r in rows:
        try:
            out[r.address] = parse_size_bytes(r.load)
        except ValueError:
            out[r.address] = None  # "?" or "n/a": not known yet
    return out


def build_report(
    *,
    keyspace: str,
    table: str,
    sampled_node: str,
    sample_ms: int,
    status: Sequence[StatusRow],
    top: TopPartitions,
    histograms: TableHistograms,
    ring: Ring,
    keys: Sequence[str] | None = None,
    thresholds: Thresholds | None = None,
) -> HotspotReport:
    th = thresholds or Thresholds()
    findings: list[str] = []
    notes: list[str] = [f"{r.address} is {r.code}: its load and ownership may be stale" for r in status if not r.up]

    owns = {r.address: r.owns for r in status}
    known_owns = {a: o for a, o in owns.items() if o is not None}
    own = _dc_skew(status, known_owns)
    if own is None:
        notes.append(f"effective ownership unknown for keyspace {keyspace}")
    elif own.skew > th.skew:
        findings.append(
            f"ownership skew {own.skew:.2f} > {th.skew} threshold in {own.datacenter}: {own.heaviest} owns "
            f"{own.value:.1f}% of {keyspace} (effective) vs a mean of {own.mean:.1f}%"
        )

    loads = _loads(status)
    known_loads = {a: float(b) for a, b in loads.items() if b is not None}
    ld = _dc_skew(status, known_loads)
    if ld is not None and ld.skew > th.skew and ld.value >= th.min_load_bytes:
        findings.append(
            f"load skew {ld.skew:.2f} > {th.skew} threshold in {ld.datacenter}: {ld.heaviest} holds "
            f"{format_bytes(ld.value)} of {format_bytes(ld.total)} (mean {format_bytes(ld.mean)})"
        )

    findings += _hot(top.reads, "reads", sampled_node, th)
    findings += _hot(top.writes, "writes", sampled_node, th)
    if not top.reads and not top.writes:
        notes.append(f"no reads or writes of {keyspace}.{table} sampled on {sampled_node} in {sample_ms} ms")

    p99, mx = histograms.row("99%"), histograms.row("Max")
    if histograms.no_sstables:
        notes.append(
            f"no SSTables of {keyspace}.{table} on {sampled_node}: partition size and cell count unknown until a flush"
        )
    if mx.partition_size_bytes is not None and mx.partition_size_bytes > th.partition_bytes:
        p99_text = "?" if p99.partition_size_bytes is None else format_bytes(p99.partition_size_bytes)
        findings.append(
            f"largest partition of {keyspace}.{table} is {format_bytes(mx.partition_size_bytes)} (p99 {p99_text}) "
            f"> {format_bytes(th.partition_bytes)} threshold on {sampled_node}"
        )
    if mx.cell_count is not None and mx.cell_count > th.cell_count:
        findings.append(
            f"largest partition of {keyspace}.{table} has {mx.cell_count:.0f} cells (p99 {p99.cell_count}) "
            f"> {th.cell_count} threshold on {sampled_node}"
        )
    notes += list(histograms.warnings)

    dist: dict[str, int] | None = None
    key_skew: float | None = None
    if keys:
        dist = key_distribution(keys, ring)
        key_skew = skew(dist.values())
        if key_skew > th.skew:
            node, n = max(dist.items(), key=lambda kv: kv[1])
            findings.append(
                f"workload key skew {key_skew:.2f} > {th.skew} threshold: {node} is primary owner of "
                f"{n} of {len(keys)} keys ({100 * n / len(keys):.1f}%)"
            )

    return HotspotReport(
        keyspace=keyspace,
        table=table,
        sampled_node=sampled_node,
        sample_ms=sample_ms,
        ownership=owns,
        ownership_skew=None if own is None else own.skew,
        loads=loads,
        load_skew=None if ld is None else ld.skew,
        top_reads=list(top.reads),
        top_writes=list(top.writes),
        partition_size_p99_bytes=p99.partition_size_bytes,
        partition_size_max_bytes=mx.partition_size_bytes,
        cell_count_p99=p99.cell_count,
        cell_count_max=mx.cell_count,
        read_latency_p99_micros=p99.read_latency_micros,
        write_latency_p99_micros=p99.write_latency_micros,
        no_sstables=histograms.no_sstables,
        key_distribution=dist,
        key_skew=key_skew,
        thresholds=th,
        findings=findings,
        notes=notes,
    )
