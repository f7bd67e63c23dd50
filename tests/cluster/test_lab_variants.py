"""A separately configured lab: several tokens per node and a short hint window."""

from __future__ import annotations

import socket

import pytest

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.parsers.hints import parse_getmaxhintwindow
from cassandra_recovery.clients.parsers.info import parse_info
from cassandra_recovery.clients.parsers.status import parse_status
from cassandra_recovery.errors import LabError
from cassandra_recovery.lab import procs
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


@pytest.mark.own_lab
def test_down_leaves_no_process_behind_frozen_ones_included(lab: Lab) -> None:
    if not procs.lab_processes(lab.config.base_dir):
        lab.up(nodes=2)
    first = lab.state().spec.nodes[0]
    lab.freeze(first.name)
    assert lab.process(first).frozen  # type: ignore[union-attr]
    stopped = lab.down()
    assert stopped >= 2
    assert procs.lab_processes(lab.config.base_dir) == []
    assert lab.down() == 0  # idempotent


@pytest.mark.own_lab
def test_a_node_that_cannot_start_is_reported_with_its_log(lab: Lab) -> None:
    lab.down()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.2", 7000))  # node1's storage port is taken
    blocker.listen(1)
    try:
        with pytest.raises(LabError) as err:
            lab.up(nodes=1)
    finally:
        blocker.close()
        lab.down()
    text = str(err.value)
    assert "node1 did not start" in text
    assert "system.log ---" in text
    assert "ERROR" in text and "/127.0.0.2:7000 is in use by another process" in text
