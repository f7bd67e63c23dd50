"""nodetool parsers and CQL node-local views describe the same cluster."""

from __future__ import annotations

import pytest

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.probe import probe_node
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.logic.durations import parse_duration_ms
from cassandra_recovery.parsers.describecluster import parse_describecluster
from cassandra_recovery.parsers.hints import parse_getmaxhintwindow, parse_statushandoff
from cassandra_recovery.parsers.info import parse_info
from cassandra_recovery.parsers.status import parse_status
from cassandra_recovery.parsers.tpstats import parse_tpstats
from cassandra_recovery.settings import ClusterConfig

pytestmark = pytest.mark.area("observation")


def test_live_set_and_schema_versions_agree(cluster: ClusterConfig, cql: CqlClient) -> None:
    nt = Nodetool(cluster)
    rows = parse_status(nt.output("node1", "status"))
    live_by_status = {r.address for r in rows if r.up}
    live_by_probe = {n.address for n in cluster.nodes if probe_node(n.address, timeout_s=2.0).ok}
    assert live_by_status == live_by_probe == {n.address for n in cluster.nodes}

    desc = parse_describecluster(nt.output("node1", "describecluster"))
    assert desc.schema_agreement
    cql_versions = {str(cql.local(n.address)["schema_version"]) for n in cluster.nodes}
    assert set(desc.schema_versions) == cql_versions
    assert len(cql_versions) == 1

    host_ids = {str(cql.local(n.address)["host_id"]) for n in cluster.nodes}
    assert {r.host_id for r in rows} == host_ids


def test_info_and_settings_agree_per_node(lab: Lab, cluster: ClusterConfig, cql: CqlClient) -> None:
    nt = Nodetool(cluster)
    for node in cluster.nodes:
        info = parse_info(nt.output(node.name, "info"))
        local = cql.local(node.address)
        assert info.host_id == str(local["host_id"])
        assert (info.datacenter, info.rack) == (local["data_center"], local["rack"])
        assert info.gossip_active and info.native_transport_active
        assert set(info.tokens) == {int(t) for t in local["tokens"]}

        window_ms = parse_getmaxhintwindow(nt.output(node.name, "getmaxhintwindow"))
        assert window_ms == parse_duration_ms(lab.state().spec.hint_window)
        settings = cql.settings(node.address, ["max_hint_window", "hinted_handoff_enabled"])
        assert settings["hinted_handoff_enabled"] == "true"
        assert parse_duration_ms(settings["max_hint_window"]) == window_ms
        assert parse_statushandoff(nt.output(node.name, "statushandoff")) is True

        pools = {r["name"] for r in cql.thread_pools(node.address)}
        assert "MutationStage" in pools
        tp = parse_tpstats(nt.output(node.name, "tpstats"))
        assert "MutationStage" in tp.pools
