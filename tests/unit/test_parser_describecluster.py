"""`nodetool describecluster` parser on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.describecluster import (
    ClusterDescription,
    DatacenterSummary,
    KeyspaceReplication,
    parse_describecluster,
)
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

OLD = "acd2f037-7f4d-3202-a826-c85776663b6d"
NEW = "2d1bdcb8-79fb-3e66-b46d-807a06d28446"


def _parse(name: str) -> ClusterDescription:
    return parse_describecluster(load_fixture(name).stdout)


def test_all_up() -> None:
    d = _parse("describecluster_all_up")
    assert d.name == "cassandra-recovery-lab"
    assert d.snitch == "org.apache.cassandra.locator.GossipingPropertyFileSnitch"
    assert d.dynamic_snitch is True
    assert d.partitioner == "org.apache.cassandra.dht.Murmur3Partitioner"
    assert d.schema_versions == {OLD: ["127.0.0.2", "127.0.0.3", "127.0.0.4"]}
    assert d.schema_agreement is True
    assert d.unreachable == []
    assert (d.live, d.joining, d.moving, d.leaving, d.unreachable_count) == (3, 0, 0, 0, 0)
    assert d.datacenters == {"dc1": DatacenterSummary(nodes=3, down=0)}
    assert d.database_versions == {"5.0.6": ["127.0.0.2:7000", "127.0.0.3:7000", "127.0.0.4:7000"]}
    assert d.keyspaces["fixtures"] == KeyspaceReplication("NetworkTopologyStrategy", {"dc1": "3"})
    assert d.keyspaces["system_traces"] == KeyspaceReplication("SimpleStrategy", {"replication_factor": "2"})
    assert d.keyspaces["system"] == KeyspaceReplication("LocalStrategy", {})
    assert set(d.keyspaces) == {
        "system_traces",
        "system_distributed",
        "system_auth",
        "fixtures",
        "system_schema",
        "system",
    }


def test_node3_down_shows_it_unreachable() -> None:
    d = _parse("describecluster_node3_down")
    assert d.schema_versions == {OLD: ["127.0.0.2", "127.0.0.3"], "UNREACHABLE": ["127.0.0.4"]}
    assert d.unreachable == ["127.0.0.4"]
    assert list(d.real_schema_versions) == [OLD]
    assert d.schema_agreement is False
    assert (d.live, d.unreachable_count) == (2, 1)
    assert d.datacenters["dc1"] == DatacenterSummary(nodes=3, down=1)
    # The frozen node is still listed with its release: database versions come from gossip state.
    assert "127.0.0.4:7000" in d.database_versions["5.0.6"]


def test_node2_partitioned_seen_from_node1() -> None:
    d = _parse("describecluster_node2_partitioned")
    assert d.unreachable == ["127.0.0.3"]
    assert d.schema_versions[OLD] == ["127.0.0.2", "127.0.0.4"]
    assert d.schema_agreement is False
    assert d.datacenters["dc1"].down == 1


def test_schema_disagreement_seen_from_partitioned_node2() -> None:
    d = _parse("describecluster_schema_disagreement")
    assert d.schema_versions == {OLD: ["127.0.0.3"], NEW: ["127.0.0.2", "127.0.0.4"]}
    assert len(d.real_schema_versions) == 2
    assert d.unreachable == []
    assert d.schema_agreement is False
    # node2 cannot hear gossip, so it still counts every node live.
    assert (d.live, d.unreachable_count) == (3, 0)


def test_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool describecluster") as err:
        parse_describecluster("nodetool: Failed to connect to '127.0.0.2:7199'\n")
    assert err.value.command == "nodetool describecluster"


def test_truncated_output_raises() -> None:
    text = load_fixture("describecluster_all_up").stdout
    with pytest.raises(ParseError, match="missing Keyspaces:"):
        parse_describecluster(text.split("Keyspaces:")[0])


def test_unknown_keyspace_line_raises() -> None:
    text = load_fixture("describecluster_all_up").stdout + "\tks -> something new\n"
    with pytest.raises(ParseError, match="unexpected keyspace line"):
        parse_describecluster(text)


def test_unknown_section_raises() -> None:
    text = load_fixture("describecluster_all_up").stdout + "Token Ownership:\n"
    with pytest.raises(ParseError, match="unknown section"):
        parse_describecluster(text)


def test_keyspaces_with_different_replication_end_with_a_note_that_is_skipped() -> None:
    d = _parse("describecluster_mixed_replication")
    assert d.keyspaces["rtest"].options == {"dc1": "2"}
    assert d.keyspaces["slowks"].options == {"dc1": "3"}
    assert d.schema_agreement
