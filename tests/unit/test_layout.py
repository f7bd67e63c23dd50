from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cassandra_recovery.lab.layout import cassandra_yaml, daemon_argv, plan_lab, rackdc_properties

pytestmark = pytest.mark.area("lab")


def test_default_plan() -> None:
    spec = plan_lab()
    assert [(n.name, n.address, n.jmx_port, n.rack, n.seed) for n in spec.nodes] == [
        ("node1", "127.0.0.2", 7199, "rack1", True),
        ("node2", "127.0.0.3", 7299, "rack2", True),
        ("node3", "127.0.0.4", 7399, "rack3", False),
    ]
    assert len({n.user for n in spec.nodes}) == 3


@pytest.mark.parametrize(("nodes", "tokens", "msg"), [(0, 1, "--nodes"), (10, 1, "--nodes"), (3, 0, "--tokens")])
def test_plan_rejects_bad_sizes(nodes: int, tokens: int, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        plan_lab(nodes, tokens)


def test_yaml_keeps_everything_under_the_node_dir(tmp_path: Path) -> None:
    spec = plan_lab(nodes=4, tokens=2, hint_window="20s")
    node = spec.nodes[2]
    conf = yaml.safe_load(cassandra_yaml(spec, node, tmp_path))
    assert conf["listen_address"] == conf["rpc_address"] == "127.0.0.4"
    assert conf["num_tokens"] == 2 and len(conf["initial_token"].split(",")) == 2
    assert conf["max_hint_window"] == "20s"
    assert conf["endpoint_snitch"] == "GossipingPropertyFileSnitch"
    assert conf["seed_provider"][0]["parameters"][0]["seeds"] == "127.0.0.2:7000,127.0.0.3:7000"
    dirs = [
        *conf["data_file_directories"],
        conf["commitlog_directory"],
        conf["hints_directory"],
        conf["saved_caches_directory"],
        conf["cdc_raw_directory"],
    ]
    assert all(d.startswith(str(tmp_path)) for d in dirs)
    assert conf["auto_bootstrap"] is False and conf["auto_snapshot"] is False
    assert rackdc_properties(node) == "dc=dc1\nrack=rack3\n"


def test_daemon_argv_runs_in_the_foreground_with_its_own_jmx_port(tmp_path: Path) -> None:
    node = plan_lab().nodes[1]
    argv = daemon_argv("/usr/bin/java", tmp_path / "lib", node, tmp_path / "node2", "512m")
    assert argv[0] == "/usr/bin/java" and argv[-1] == "org.apache.cassandra.service.CassandraDaemon"
    assert "-Dcassandra.jmx.local.port=7299" in argv
    assert f"-Dcassandra.config=file://{tmp_path}/node2/conf/cassandra.yaml" in argv
    assert "-Dcassandra-foreground=yes" in argv and "-Xms512m" in argv and "-Xmx512m" in argv


def test_long_heartbeat_gaps_stay_out_of_the_failure_detector(tmp_path: Path) -> None:
    """Cassandra 5.0's default lets every past freeze or partition into the mean heartbeat interval, so
    conviction slows with each outage; the lab sets the bound Cassandra meant (2 s) explicitly."""
    argv = daemon_argv("/usr/bin/java", tmp_path / "lib", plan_lab().nodes[0], tmp_path / "node1", "512m")
    assert "-Dcassandra.fd_max_interval_ms=2000" in argv


def test_a_shifted_lab_takes_addresses_and_jmx_ports_beside_the_default_one() -> None:
    from cassandra_recovery.lab.layout import replacement_for

    default, shifted = plan_lab(), plan_lab(nodes=2, dcs=2, user_prefix="crlab2-", offset=5)
    assert [(n.name, n.address, n.jmx_port) for n in shifted.nodes] == [
        ("node1", "127.0.0.7", 7699),
        ("node2", "127.0.0.8", 7799),
        ("node3", "127.0.0.9", 7899),
        ("node4", "127.0.0.10", 7999),
    ]
    # The default lab and its replacement node (node4 on 127.0.0.5) never meet the shifted one.
    replaced = replacement_for(default, default.nodes[2], "crlab-")
    taken = {n.address for n in default.nodes} | {replaced.address}
    assert not taken & {n.address for n in shifted.nodes}
    assert not ({n.jmx_port for n in default.nodes} | {replaced.jmx_port}) & {n.jmx_port for n in shifted.nodes}
    assert replacement_for(shifted, shifted.nodes[1], "crlab2-", 5).address == "127.0.0.11"
