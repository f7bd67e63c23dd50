"""Regions seen together: split, one-way, dead datacenter, node failure; consistency levels per side."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cassandra_recovery.logic.regions import RegionsKind, RegionView, classify_regions, settled, side_levels
from cassandra_recovery.logic.replication import NetworkTopologyStrategy, RingToken, token_ranges
from cassandra_recovery.logic.tokens import balanced_tokens
from tests import faults as F

pytestmark = pytest.mark.area("regions")

DC1, DC2 = ["127.0.0.2", "127.0.0.3"], ["127.0.0.4", "127.0.0.5"]
DC_OF = {**dict.fromkeys(DC1, "dc1"), **dict.fromkeys(DC2, "dc2")}
ALL = DC1 + DC2


def view(
    dc: str, own_up: bool = True, down: Sequence[str] = (), connected_to: Sequence[str] | None = None
) -> RegionView:
    own = [a for a in ALL if DC_OF[a] == dc]
    others = [a for a in ALL if DC_OF[a] != dc]
    connected = others if connected_to is None else connected_to
    return RegionView(
        dc,
        probes=dict.fromkeys(own, own_up),
        gossip={a: ("D" if a in down else "U") for a in ALL},
        connected={a: a in connected for a in others},
    )


def _ring() -> list[RingToken]:
    """Two tokens per datacenter, each datacenter balanced and offset by its index (as the lab does)."""
    out = []
    for d, nodes in enumerate((DC1, DC2)):
        for a, ts in zip(nodes, balanced_tokens(2, 1), strict=True):
            out += [RingToken(t + d, a, DC_OF[a], "r") for t in ts]
    return out


def test_healthy() -> None:
    v = classify_regions({"dc1": view("dc1"), "dc2": view("dc2")}, DC_OF)
    assert (v.kind, v.sides, v.dead, v.one_way) == (RegionsKind.HEALTHY, [["dc1", "dc2"]], [], [])


@pytest.mark.fault(F.DC_SPLIT)
def test_split_both_alive_both_see_the_other_down_no_connection_either_way() -> None:
    v = classify_regions(
        {"dc1": view("dc1", down=DC2, connected_to=[]), "dc2": view("dc2", down=DC1, connected_to=[])}, DC_OF
    )
    assert (v.kind, v.sides) == (RegionsKind.SPLIT, [["dc1"], ["dc2"]])
    assert "dc1 and dc2 split" in v.reasons[0]


@pytest.mark.fault(F.DC_ONE_WAY)
def test_one_way_gossip_looks_like_a_split_but_one_side_still_connects() -> None:
    # what dc1 opens to dc2 is cut: dc1 holds no connection to dc2, dc2 still holds its connections to dc1
    v = classify_regions(
        {"dc1": view("dc1", down=DC2, connected_to=[]), "dc2": view("dc2", down=DC1, connected_to=DC1)}, DC_OF
    )
    assert (v.kind, v.one_way, v.sides) == (RegionsKind.ONE_WAY, [("dc1", "dc2")], [["dc1"], ["dc2"]])
    assert "connections dc1 opens to dc2 are cut" in v.reasons[0]


@pytest.mark.fault(F.DC_KILLED)
def test_dead_datacenter_its_detector_reaches_none_of_its_nodes() -> None:
    v = classify_regions(
        {"dc1": view("dc1", down=DC2, connected_to=[]), "dc2": view("dc2", own_up=False, down=DC1, connected_to=[])},
        DC_OF,
    )
    assert (v.kind, v.dead, v.sides) == (RegionsKind.DC_FAILURE, ["dc2"], [["dc1"]])
    silent = classify_regions({"dc1": view("dc1", down=DC2, connected_to=[]), "dc2": None}, DC_OF)
    assert (silent.kind, silent.dead) == (RegionsKind.DC_FAILURE, ["dc2"])
    assert "its detector reported nothing" in silent.reasons[0]


@pytest.mark.fault(F.DC_SPLIT, F.DC_KILLED)
def test_one_region_alone_cannot_tell_a_split_from_a_dead_datacenter() -> None:
    """The production caveat: dc2's detector silent (cut off from the tool) reads as dc2 dead."""
    alone = classify_regions({"dc1": view("dc1", down=DC2, connected_to=[]), "dc2": None}, DC_OF)
    assert alone.kind is RegionsKind.DC_FAILURE


@pytest.mark.fault(F.NODE_KILLED)
def test_node_failure_inside_a_region() -> None:
    v = classify_regions({"dc1": view("dc1", down=["127.0.0.3"]), "dc2": view("dc2", down=["127.0.0.3"])}, DC_OF)
    assert v.kind is RegionsKind.NODE_FAILURE and "127.0.0.3" in v.reasons[-1]


def test_down_yet_connected_is_not_explained() -> None:
    v = classify_regions({"dc1": view("dc1", down=DC2), "dc2": view("dc2", down=DC1)}, DC_OF)
    assert v.kind is RegionsKind.UNKNOWN


@pytest.mark.fault(F.DETECTOR_DOWN)
def test_silent_detector_of_a_region_seen_up_is_unknown() -> None:
    v = classify_regions({"dc1": view("dc1"), "dc2": None}, DC_OF)
    assert v.kind is RegionsKind.UNKNOWN and "not reporting" in v.reasons[-1]


def test_levels_per_side_rf_2_in_each_dc() -> None:
    ring = _ring()
    rep = NetworkTopologyStrategy({"dc1": 2, "dc2": 2})
    ranges = {"shop": token_ranges(ring, rep)}
    dc1_side = side_levels(ranges, {"shop": rep}, set(DC1), DC_OF, "dc1")
    n = len(ranges["shop"])
    assert dc1_side == {
        "shop": {
            "LOCAL_ONE": "ok",
            "LOCAL_QUORUM": "ok",
            "QUORUM": f"{n}/{n} ranges unavailable",  # 3 of 4 replicas needed, 2 on each side
            "EACH_QUORUM": f"{n}/{n} ranges unavailable",
            "ALL": f"{n}/{n} ranges unavailable",
        }
    }
    everyone = side_levels(ranges, {"shop": rep}, set(ALL), DC_OF, "dc2")
    assert set(everyone["shop"].values()) == {"ok"}


def test_a_verdict_counts_once_it_repeats() -> None:
    split = classify_regions(
        {"dc1": view("dc1", down=DC2, connected_to=[]), "dc2": view("dc2", down=DC1, connected_to=[])}, DC_OF
    )
    transient = classify_regions(
        {"dc1": view("dc1", down=DC2, connected_to=DC2), "dc2": view("dc2", down=DC1, connected_to=[])}, DC_OF
    )
    assert transient.kind is RegionsKind.ONE_WAY
    assert settled([split, split]) is None
    assert settled([transient, split, split]) is None
    assert settled([transient, split, split, split]) == split


@pytest.mark.fault(F.DC_SPLIT)
def test_levels_by_side_of_a_split() -> None:
    from cassandra_recovery.logic.regions import levels_by_side

    ring = _ring()
    rep = NetworkTopologyStrategy({"dc1": 2, "dc2": 2})
    split = classify_regions(
        {"dc1": view("dc1", down=DC2, connected_to=[]), "dc2": view("dc2", down=DC1, connected_to=[])}, DC_OF
    )
    out = levels_by_side(split, {"shop": token_ranges(ring, rep)}, {"shop": rep}, DC_OF)
    assert sorted(out) == ["dc1", "dc2"]
    assert {dc: out[dc]["shop"]["LOCAL_QUORUM"] for dc in out} == {"dc1": "ok", "dc2": "ok"}
    assert all(out[dc]["shop"]["EACH_QUORUM"] != "ok" for dc in out)
