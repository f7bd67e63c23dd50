"""Regions (datacenters) seen together (pure): a split, a one-way partition, a dead datacenter or node failures.

One region's view alone cannot tell them apart: a region cut off from another sees exactly what it would see if
the other had died. Each region's detector observes its own nodes directly and the others only through its
nodes' gossip and their outgoing node-to-node connections. Together:
- a region whose own detector reaches none of its nodes (or that reported nothing) is dead if the others see it
  down;
- two regions that both answer their own detectors and see each other down are split: if neither side holds an
  outgoing connection to the other, both ways; if exactly one side still does, one way (the other side's
  connections are cut). Gossip alone shows a one-way cut as a split, since each side's gossip replies travel
  on the connections the cut drops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from cassandra_recovery.logic.replication import (
    ConsistencyLevel,
    Replication,
    TokenRange,
    ranges_at_risk,
    rf_by_dc,
    token_ranges,
)

SIDE_LEVELS = (
    ConsistencyLevel.LOCAL_ONE,
    ConsistencyLevel.LOCAL_QUORUM,
    ConsistencyLevel.QUORUM,
    ConsistencyLevel.EACH_QUORUM,
    ConsistencyLevel.ALL,
)


@dataclass(frozen=True)
class RegionView:
    """What one region's detector saw. `probes`: its own nodes answering its client; `gossip`: every node's
    address -> "U"/"D" as the majority of its live nodes' `nodetool status` has it; `connected`: every other
    node's address -> whether one of its live nodes holds an outgoing node-to-node connection to it."""

    dc: str
    probes: Mapping[str, bool]
    gossip: Mapping[str, str] = field(default_factory=dict)
    connected: Mapping[str, bool] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return any(self.probes.values())


class RegionsKind(StrEnum):
    HEALTHY = "healthy"
    NODE_FAILURE = "node_failure"  # some nodes down, no whole region cut off
    SPLIT = "split"
    ONE_WAY = "one_way"
    DC_FAILURE = "dc_failure"
    UNKNOWN = "unknown"  # regions see each other down yet both still connect: not explained


@dataclass(frozen=True)
class RegionsVerdict:
    kind: RegionsKind
    sides: list[list[str]]  # datacenters that still work together, one list per side
    reasons: list[str]
    one_way: list[tuple[str, str]] = field(default_factory=list)  # (from, to): what `from` opens to `to` is cut
    dead: list[str] = field(default_factory=list)  # datacenters down as a whole

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _region_down(view: RegionView, nodes: Sequence[str]) -> bool:
    return bool(nodes) and all(view.gossip.get(a) == "D" for a in nodes)


def _connects(view: RegionView, nodes: Sequence[str]) -> bool:
    return any(view.connected.get(a, False) for a in nodes)


def classify_regions(views: Mapping[str, RegionView | None], dc_of: Mapping[str, str]) -> RegionsVerdict:
    """The regions' views together; `views` has an entry per datacenter (None: its detector reported nothing)."""
    nodes_in: dict[str, list[str]] = {}
    for addr, dc in sorted(dc_of.items()):
        nodes_in.setdefault(dc, []).append(addr)
    dcs = sorted(nodes_in)
    alive = {dc: v for dc in dcs if (v := views.get(dc)) is not None and v.alive}
    reasons: list[str] = []
    dead = []
    for dc in dcs:
        if dc in alive:
            continue
        seen_down = [o for o, v in alive.items() if _region_down(v, nodes_in[dc])]
        if alive and len(seen_down) == len(alive):
            dead.append(dc)
            why = "its detector reported nothing" if views.get(dc) is None else "no node answers its own detector"
            reasons.append(f"{dc} down as a whole: {why}, and {', '.join(seen_down)} see(s) all its nodes down")
    split_pairs: list[tuple[str, str]] = []
    one_way: list[tuple[str, str]] = []
    unknown: list[str] = []
    names = sorted(alive)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            vx, vy = alive[x], alive[y]
            if not (_region_down(vx, nodes_in[y]) or _region_down(vy, nodes_in[x])):
                continue
            cx, cy = _connects(vx, nodes_in[y]), _connects(vy, nodes_in[x])
            if not cx and not cy:
                split_pairs.append((x, y))
                reasons.append(f"{x} and {y} split: both answer their own detectors, see each other down, and neither "
                               "holds a node-to-node connection to the other")  # fmt: skip
            elif cx != cy:
                src, dst = (y, x) if cx else (x, y)
                one_way.append((src, dst))
                reasons.append(f"one-way partition: connections {src} opens to {dst} are cut ({dst} still connects "
                               f"to {src}); gossip on both sides shows the other down")  # fmt: skip
            else:
                unknown.append(f"{x}/{y}")
                reasons.append(f"{x} and {y} see each other down yet both still connect: not explained")
    node_down = [
        a for v in alive.values() for a in nodes_in[v.dc] if not v.probes.get(a, False) or v.gossip.get(a) == "D"
    ]
    sides = _sides(dcs, [*split_pairs, *one_way], dead)
    if unknown:
        kind = RegionsKind.UNKNOWN
    elif split_pairs:
        kind = RegionsKind.SPLIT
    elif one_way:
        kind = RegionsKind.ONE_WAY
    elif dead:
        kind = RegionsKind.DC_FAILURE
    elif node_down:
        kind = RegionsKind.NODE_FAILURE
        reasons.append(f"nodes down within their region: {', '.join(sorted(set(node_down)))}")
    elif len(alive) < len(dcs):
        kind = RegionsKind.UNKNOWN
        silent = ", ".join(d for d in dcs if d not in alive)
        reasons.append(f"no view from {silent} while the others see it up: its detector is not reporting")
    else:
        kind = RegionsKind.HEALTHY
        reasons.append("every region answers its detector and sees the others up")
    return RegionsVerdict(kind, sides, reasons, one_way, dead)


def _sides(dcs: Sequence[str], cut: Iterable[tuple[str, str]], dead: Sequence[str]) -> list[list[str]]:
    """Live datacenters grouped by what still connects them (a cut pair is apart either way)."""
    apart = {frozenset(p) for p in cut}
    out: list[list[str]] = []
    for dc in dcs:
        if dc in dead:
            continue
        for side in out:
            if all(frozenset((dc, other)) not in apart for other in side):
                side.append(dc)
                break
        else:
            out.append([dc])
    return out


def side_levels(
    ranges_by_keyspace: Mapping[str, Sequence[TokenRange]],
    keyspaces: Mapping[str, Replication],
    side_nodes: set[str],
    dc_of: Mapping[str, str],
    side_dc: str,
) -> dict[str, dict[str, str]]:
    """Per keyspace, each level from SIDE_LEVELS for a client of `side_dc` that reaches only `side_nodes`:
    "ok" or "n/N ranges unavailable"."""
    out: dict[str, dict[str, str]] = {}
    for ks, ranges in sorted(ranges_by_keyspace.items()):
        factors = rf_by_dc(keyspaces[ks], side_dc)
        risk = ranges_at_risk(ranges, side_nodes, factors, dc_of, side_dc)
        out[ks] = {
            str(cl): "ok" if not risk[cl] else f"{len(risk[cl])}/{len(ranges)} ranges unavailable" for cl in SIDE_LEVELS
        }
    return out


def settled(history: Sequence[RegionsVerdict], needed: int = 3) -> RegionsVerdict | None:
    """The verdict once the last `needed` observations agree (kind, one-way direction, dead regions); None
    before. Conviction and connection teardown reach the two sides of a cut seconds apart, so a single
    observation can read a split as one-way."""
    if len(history) < needed:
        return None
    last = history[-needed:]
    keys = {(v.kind, tuple(v.one_way), tuple(v.dead)) for v in last}
    return last[-1] if len(keys) == 1 else None


def levels_by_side(
    verdict: RegionsVerdict,
    ranges_by_keyspace: Mapping[str, Sequence[TokenRange]],
    keyspaces: Mapping[str, Replication],
    dc_of: Mapping[str, str],
) -> dict[str, dict[str, dict[str, str]]]:
    """For a client in each live datacenter, which levels still work per keyspace when it reaches only its side."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for side in verdict.sides:
        nodes = {a for a, dc in dc_of.items() if dc in side}
        for dc in side:
            out[dc] = side_levels(ranges_by_keyspace, keyspaces, nodes, dc_of, dc)
    return out


def regions_assessment(
    regions: Mapping[str, Any],
    ring: Sequence[tuple[int, str, str, str]],
    keyspaces: Mapping[str, Replication],
    source_of_truth_reachable: bool | None,
) -> dict[str, Any]:
    """The assessment's region section: the settled verdict, per side and keyspace which levels still work,
    and whether the source of truth answers (both sides fall back to it)."""
    v = regions["verdict"]
    verdict = RegionsVerdict(
        RegionsKind(v["kind"]),
        [list(s) for s in v["sides"]],
        list(v["reasons"]),
        [(str(a), str(b)) for a, b in v.get("one_way", [])],
        list(v.get("dead", [])),
    )
    dc_of = {t[1]: t[2] for t in ring}
    ranges = {ks: token_ranges(ring, rep) for ks, rep in keyspaces.items()}
    levels = levels_by_side(verdict, ranges, keyspaces, dc_of)
    reasons = list(verdict.reasons)
    for dc, per_ks in sorted(levels.items()):
        for ks, cls in sorted(per_ks.items()):
            works = [cl for cl, state in cls.items() if state == "ok"]
            reasons.append(f"clients in {dc}, keyspace {ks}: {', '.join(works) or 'no level'} still work")
    if source_of_truth_reachable is not None:
        state = "reachable" if source_of_truth_reachable else "NOT reachable"
        reasons.append(f"PostgreSQL (source of truth) is {state} from the tool; its availability is out of scope")
    return {
        "kind": verdict.kind.value,
        "sides": verdict.sides,
        "one_way": verdict.one_way,
        "dead": verdict.dead,
        "settled": bool(regions.get("settled")),
        "levels": levels,
        "source_of_truth_reachable": source_of_truth_reachable,
        "reasons": reasons,
    }
