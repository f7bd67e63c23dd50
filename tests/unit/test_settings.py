from __future__ import annotations

from pathlib import Path

import pytest

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings

pytestmark = pytest.mark.area("lab")

YAML = """
default_cluster: prod-eu
clusters:
  prod-eu:
    contact_points: [10.0.0.1, 10.0.0.2]
    local_datacenter: eu-west
    password: s3cret-cql
    jmx_username: monitor
    jmx_password: s3cret-jmx
    slack_channel: "#db-incidents"
    nodes:
      - {name: cass-1, address: 10.0.0.1, jmx_host: 10.0.0.1, jmx_port: 7199}
      - {name: cass-2, address: 10.0.0.2, jmx_host: 10.0.0.2}
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "clusters.yaml"
    p.write_text(YAML)
    monkeypatch.setenv("CASSANDRA_RECOVERY_CONFIG", str(p))
    monkeypatch.setenv("CASSANDRA_RECOVERY_LAB__BASE_DIR", str(tmp_path / "lab"))
    return p


def test_yaml_registry(config_file: Path) -> None:
    s = Settings()
    c = s.cluster()
    assert c.id == "prod-eu" and c.local_datacenter == "eu-west"
    assert c.node("cass-2").jmx_host == "10.0.0.2" and c.node("10.0.0.1").name == "cass-1"
    assert c.password is not None and c.password.get_secret_value() == "s3cret-cql"
    assert "s3cret" not in repr(s) and "s3cret" not in str(c.model_dump())


def test_env_overrides_yaml(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASSANDRA_RECOVERY_DEFAULT_CLUSTER", "lab")
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__PORT", "5499")
    s = Settings()
    assert s.cluster().id == "lab" and s.postgres.port == 5499
    assert s.cluster("prod-eu").slack_channel == "#db-incidents"


def test_lab_registers_itself_before_it_is_up(config_file: Path) -> None:
    lab = Settings().cluster("lab")
    assert [n.address for n in lab.nodes] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert lab.contact_points == ["127.0.0.2", "127.0.0.3"] and lab.local_datacenter == "dc1"


def test_unknown_cluster_and_node_name_the_known_ones(config_file: Path) -> None:
    s = Settings()
    with pytest.raises(ConfigError, match="registered clusters: lab, prod-eu"):
        s.cluster("nope")
    with pytest.raises(ConfigError, match="known nodes: cass-1 \\(10.0.0.1\\), cass-2"):
        s.cluster("prod-eu").node("cass-9")


def test_bad_cluster_id_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("clusters:\n  Bad!Id: {contact_points: [a], local_datacenter: d, nodes: []}\n")
    monkeypatch.setenv("CASSANDRA_RECOVERY_CONFIG", str(p))
    with pytest.raises(ValueError, match="invalid cluster id"):
        Settings()


def test_missing_config_file_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CASSANDRA_RECOVERY_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="cannot read"):
        Settings()


def test_automation_level_per_cluster(config_file: Path) -> None:
    assert Settings().cluster("prod-eu").automation == "act"  # today's behaviour unless configured
    config_file.write_text(YAML.replace("    slack_channel:", "    automation: propose\n    slack_channel:"))
    assert Settings().cluster("prod-eu").automation == "propose"


def test_unknown_automation_level_is_rejected(config_file: Path) -> None:
    config_file.write_text(YAML.replace("    slack_channel:", "    automation: auto\n    slack_channel:"))
    with pytest.raises(ValueError, match="'observe', 'propose' or 'act'"):
        Settings()


def test_failed_run_retry_bound(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().runbook.max_run_retries == 2
    monkeypatch.setenv("CASSANDRA_RECOVERY_RUNBOOK__MAX_RUN_RETRIES", "0")
    assert Settings().runbook.max_run_retries == 0
    monkeypatch.setenv("CASSANDRA_RECOVERY_RUNBOOK__MAX_RUN_RETRIES", "-1")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings()


def test_automation_levels_are_the_runbooks() -> None:
    from typing import get_args

    from cassandra_recovery.logic.runbook_model import AutomationLevel
    from cassandra_recovery.settings import ClusterConfig

    assert set(get_args(ClusterConfig.model_fields["automation"].annotation)) == {m.value for m in AutomationLevel}
