"""A separately configured lab: several tokens per node and a short hint window."""

from __future__ import annotations

import pytest

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.parsers.hints import parse_getmaxhintwindow
from cassandra_recovery.clients.parsers.info import parse_info
from cassandra_recovery.clients.parsers.status import parse_status
from cassandra_recovery.errors import LabError
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.registry import lab_cluster_config
from cassandra_recovery.logic.tokens import balanced_tokens


@pytest.mark.own_lab
def test_multi_token_lab_with_short_hint_window(lab: Lab) -> None:
    lab.down()
    lab.up(nodes=3, tokens=4, hint_window="20s")
    with pytest.raises(LabError, match="already up with 3 nodes, 4 token"):
        lab.up(nodes=3, tokens=1)  # a different topology is refused while this one runs
    cluster = lab_cluster_config(lab.config)
    nt = Nodetool(cluster)
    rows = parse_status(nt.output("node1", "status"))
    assert [r.tokens for r in rows] == [4, 4, 4]
    assert all(r.code == "UN" for r in rows)
    expected = balanced_tokens(3, 4)
    for i, node in enumerate(cluster.nodes):
        info = parse_info(nt.output(node.name, "info", "-T"))
        assert sorted(info.tokens) == sorted(expected[i])
        assert parse_getmaxhintwindow(nt.output(node.name, "getmaxhintwindow")) == 20_000
    lab.down()
    assert not (lab.config.base_dir / "lab.json").exists()
