"""Multi-datacenter lab topology and the nftables rules of `lab split` (pure parts)."""

from __future__ import annotations

import pytest

from cassandra_recovery.lab.layout import cassandra_yaml, datacenters, plan_lab, rackdc_properties
from cassandra_recovery.lab.split import Cut, check_cut, resolve_group, ruleset
from tests import faults as F

pytestmark = pytest.mark.area("lab")

NODES = [
    ("node1", "127.0.0.2", "dc1"),
    ("node2", "127.0.0.3", "dc1"),
    ("node3", "127.0.0.4", "dc2"),
    ("node4", "127.0.0.5", "dc2"),
]
UIDS = {"node1": 1001, "node2": 1002, "node3": 1003, "node4": 1004}
ADDR = {n: a for n, a, _ in NODES}


def test_two_datacenters_of_two_nodes() -> None:
    spec = plan_lab(nodes=2, dcs=2)
    assert [(n.name, n.address, n.datacenter, n.rack, n.jmx_port) for n in spec.nodes] == [
        ("node1", "127.0.0.2", "dc1", "rack1", 7199),
        ("node2", "127.0.0.3", "dc1", "rack2", 7299),
        ("node3", "127.0.0.4", "dc2", "rack1", 7399),
        ("node4", "127.0.0.5", "dc2", "rack2", 7499),
    ]
    assert [n.name for n in spec.seeds] == ["node1", "node3"]  # a seed in each datacenter
    tokens = [t for n in spec.nodes for t in n.tokens]
    assert len(set(tokens)) == len(tokens)  # each DC balanced on its own, offset: unique cluster-wide
    assert spec.nodes[2].tokens[0] == spec.nodes[0].tokens[0] + 1
    assert list(datacenters(spec)) == ["dc1", "dc2"]
    assert rackdc_properties(spec.nodes[3]) == "dc=dc2\nrack=rack2\n"
    assert "127.0.0.2:7000,127.0.0.4:7000" in cassandra_yaml(spec, spec.nodes[0], __import__("pathlib").Path("/x"))


def test_single_datacenter_default_unchanged() -> None:
    spec = plan_lab()
    assert [n.datacenter for n in spec.nodes] == ["dc1"] * 3
    assert [n.name for n in spec.seeds] == ["node1", "node2"]


@pytest.mark.parametrize(("nodes", "dcs", "msg"), [(5, 2, "5 x 2"), (2, 5, "--dcs"), (10, 1, "--nodes")])
def test_too_big_a_lab_is_refused(nodes: int, dcs: int, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        plan_lab(nodes=nodes, dcs=dcs)


def test_groups_by_datacenter_or_nodes() -> None:
    assert resolve_group("dc2", NODES) == ("node3", "node4")
    assert resolve_group("node1, 127.0.0.5", NODES) == ("node1", "node4")
    with pytest.raises(ValueError, match="neither a datacenter"):
        resolve_group("dc9", NODES)
    with pytest.raises(ValueError, match="both sides"):
        check_cut(("node1", "node3"), ("node3",))
    with pytest.raises(ValueError, match="non-empty"):
        check_cut((), ("node3",))


@pytest.mark.fault(F.DC_SPLIT)
def test_two_way_cut_rules_each_node_to_the_other_side() -> None:
    script = ruleset([Cut(("node1", "node2"), ("node3", "node4"))], UIDS, ADDR)
    rules = [ln.strip() for ln in script.splitlines() if "skuid" in ln]
    assert len(rules) == 4
    assert rules[0].startswith("meta skuid 1001 ip daddr { 127.0.0.4, 127.0.0.5 } tcp dport 7000 counter drop")
    assert rules[2].startswith("meta skuid 1003 ip daddr { 127.0.0.2, 127.0.0.3 } tcp dport 7000 counter drop")
    # replaced atomically whether or not the table exists
    assert script.startswith("table inet cassandra_recovery_lab\ndelete table inet cassandra_recovery_lab\n")
    assert "type filter hook output priority 0; policy accept;" in script


@pytest.mark.fault(F.DC_ONE_WAY)
def test_one_way_cut_blocks_only_what_a_opens() -> None:
    script = ruleset([Cut(("node1",), ("node3", "node4"), one_way=True)], UIDS, ADDR)
    rules = [ln.strip() for ln in script.splitlines() if "skuid" in ln]
    assert rules == [
        'meta skuid 1001 ip daddr { 127.0.0.4, 127.0.0.5 } tcp dport 7000 counter drop  comment "node1 to node3,node4"'
    ]
    assert Cut.from_dict(Cut(("node1",), ("node3",), True).as_dict()) == Cut(("node1",), ("node3",), True)
    with pytest.raises(ValueError):
        Cut.from_dict({"a": "node1", "b": ["node3"]})


def test_missing_nft_and_missing_rights_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from cassandra_recovery.errors import LabError, ToolMissingError
    from cassandra_recovery.lab import split

    monkeypatch.setattr(split, "_nft_path", lambda: None)
    with pytest.raises(ToolMissingError, match="nft is missing.*nftables"):
        split.apply([Cut(("node1",), ("node3",))], UIDS, ADDR)
    assert split.remove() is False  # nothing to remove without nft

    monkeypatch.setattr(split, "_nft_path", lambda: "/usr/sbin/nft")
    denied = subprocess.CompletedProcess(["nft"], 1, "", "Error: Could not process rule: Operation not permitted")
    monkeypatch.setattr(split.subprocess, "run", lambda *a, **k: denied)
    with pytest.raises(LabError, match="CAP_NET_ADMIN"):
        split.apply([Cut(("node1",), ("node3",))], UIDS, ADDR)


def test_each_lab_keeps_its_cuts_in_its_own_table() -> None:
    from cassandra_recovery.lab.split import TABLE, table_for

    assert table_for(0) == TABLE  # the default lab's table is unchanged
    assert table_for(5) != TABLE
    script = ruleset([Cut(("node1",), ("node3",))], UIDS, ADDR, table_for(5))
    assert f"table inet {table_for(5)} {{" in script and f"table inet {TABLE} " not in script
