"""Monitoring config rendering, token-file rules, argv and the missing-binary error (no processes started)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cassandra_recovery.cli import build_parser
from cassandra_recovery.detection.metrics import DetectorMetrics
from cassandra_recovery.errors import ConfigError, ToolMissingError
from cassandra_recovery.lab import monitoring as m
from cassandra_recovery.scheduled.repair_metrics import RepairMetrics

pytestmark = pytest.mark.area("monitoring")


def _cfg(tmp_path: Path, **kw: object) -> m.MonitoringConfig:
    return m.MonitoringConfig(base_dir=tmp_path / "monitoring", **kw)  # type: ignore[arg-type]


def test_prometheus_scrapes_and_evaluates_every_second(tmp_path: Path) -> None:
    doc = yaml.safe_load(m.render_prometheus(_cfg(tmp_path, cluster="c1")))
    assert doc["global"] == {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
        "external_labels": {"cluster": "c1"},
    }
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in doc["scrape_configs"]}
    assert jobs == {
        "cassandra-recovery-detector": ["127.0.0.1:9464"],
        "cassandra-recovery-receiver": ["127.0.0.1:9096"],  # its ops listener
    }
    assert doc["rule_files"] == [str(m.RULES_FILE)] and m.RULES_FILE.is_file()
    assert doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9493"]


def test_alertmanager_routes_to_the_receiver_with_a_credentials_file(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, repeat_interval="1h")
    doc = yaml.safe_load(m.render_alertmanager(cfg))
    assert doc["route"] == {
        "receiver": "cassandra-recovery",
        "group_by": ["alertname", "cluster"],
        "group_wait": "1s",
        "group_interval": "2s",
        "repeat_interval": "1h",
        # the tool's own pages go to people, never back into the receiver as a trigger
        "routes": [{"matchers": ['source="cassandra-recovery"'], "receiver": "people"}],
    }
    assert doc["receivers"][1] == {"name": "people"}
    (hook,) = doc["receivers"][0]["webhook_configs"]
    assert hook["url"] == "http://127.0.0.1:9095/alerts/alertmanager"
    assert hook["send_resolved"] is True
    assert hook["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "monitoring" / "receiver.token")}
    }


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"group_interval": "10s"}, "between 1s and 5s"),
        ({"group_interval": "500ms"}, "between 1s and 5s"),
        ({"repeat_interval": "1s", "group_interval": "3s"}, "shorter than group_interval"),
        ({"repeat_interval": "4 hours"}, "bad duration"),
        ({"receiver_url": "127.0.0.1:9095/alerts"}, "http:// or https://"),
    ],
)
def test_bad_alertmanager_settings_are_config_errors(tmp_path: Path, kw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        m.render_alertmanager(_cfg(tmp_path, **kw))


def test_default_token_is_generated_once_owner_only_and_never_in_configs_or_argv(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    path = m.ensure_token_file(cfg)
    token = path.read_text().strip()
    assert path.stat().st_mode & 0o777 == 0o600 and len(token) >= 32
    assert m.ensure_token_file(cfg).read_text().strip() == token
    rendered = m.render_prometheus(cfg) + m.render_alertmanager(cfg)
    argv = m.prometheus_argv("prometheus", cfg) + m.alertmanager_argv("alertmanager", cfg)
    assert token not in rendered and token not in " ".join(argv)


def test_given_token_file_must_exist_be_private_and_non_empty(tmp_path: Path) -> None:
    f = tmp_path / "token"
    with pytest.raises(ConfigError, match="does not exist"):
        m.ensure_token_file(_cfg(tmp_path, token_file=f))
    f.write_text("abc\n")
    f.chmod(0o644)
    with pytest.raises(ConfigError, match=r"-rw-r--r--.*chmod 600"):
        m.ensure_token_file(_cfg(tmp_path, token_file=f))
    f.chmod(0o600)
    assert m.ensure_token_file(_cfg(tmp_path, token_file=f)) == f
    f.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        m.ensure_token_file(_cfg(tmp_path, token_file=f))


def test_argv_uses_own_ports_data_dirs_and_no_gossip(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    d = tmp_path / "monitoring"
    assert m.prometheus_argv("/usr/bin/prometheus", cfg)[1:4] == [
        f"--config.file={d}/prometheus.yml",
        "--web.listen-address=127.0.0.1:9490",
        f"--storage.tsdb.path={d}/prometheus-data",
    ]
    assert m.alertmanager_argv("/usr/bin/prometheus-alertmanager", cfg)[1:] == [
        f"--config.file={d}/alertmanager.yml",
        "--web.listen-address=127.0.0.1:9493",
        f"--storage.path={d}/alertmanager-data",
        "--cluster.listen-address=",
    ]


def test_missing_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        ToolMissingError, match=r"alertmanager is not installed.*apt-get install prometheus-alertmanager"
    ):
        m.find_binary("alertmanager")
    with pytest.raises(ToolMissingError, match=r"prometheus is not installed .*`?prometheus"):
        m.up(_cfg(tmp_path))
    assert not (tmp_path / "monitoring").exists()


def test_status_of_nothing_started(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, prometheus_port=1, alertmanager_port=1)  # port 1: nothing answers
    assert [(s.name, s.pid, s.ready) for s in m.status(cfg)] == [
        ("prometheus", None, False),
        ("alertmanager", None, False),
    ]
    m.down(cfg)  # idempotent with nothing to stop


@pytest.mark.skipif(not (shutil.which("promtool") and shutil.which("amtool")), reason="prometheus tools not installed")
def test_rendered_configs_pass_promtool_and_amtool(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    cfg.base_dir.mkdir()
    m.ensure_token_file(cfg)
    (cfg.base_dir / "prometheus.yml").write_text(m.render_prometheus(cfg))
    (cfg.base_dir / "alertmanager.yml").write_text(m.render_alertmanager(cfg))
    for argv in (["promtool", "check", "config"], ["amtool", "check-config"]):
        name = "prometheus.yml" if argv[0] == "promtool" else "alertmanager.yml"
        r = subprocess.run([*argv, str(cfg.base_dir / name)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_rules_only_use_metrics_the_detector_exports() -> None:
    metrics = DetectorMetrics("lab")
    RepairMetrics("lab", metrics.registry)  # the detector serves the repair gauges from the same registry
    exported = {mf.name for mf in metrics.registry.collect()}
    used = set(re.findall(r"\bcr_[a-z_]+", m.RULES_FILE.read_text()))
    detector_used = {n for n in used if not n.startswith("cr_receiver_")}
    assert detector_used <= exported, detector_used - exported
    assert {"cr_receiver_spooled_pending", "cr_receiver_requests_rejected_total"} <= used


def test_cli_parses_the_monitoring_verb() -> None:
    args = build_parser().parse_args(
        ["lab", "monitoring", "up", "--receiver-url", "http://127.0.0.1:1/x", "--token-file", "/t"]
    )
    assert (args.lab_verb, args.action, args.receiver_url, args.token_file) == (
        "monitoring",
        "up",
        "http://127.0.0.1:1/x",
        Path("/t"),
    )


def test_prometheus_scrapes_the_receivers_ops_listener_not_its_alert_port(tmp_path: Path) -> None:
    """The receiver serves /metrics on its own listener (`ops_port`) so a flood on the alert port does not starve
    scrapes: the lab's Prometheus (the pipeline's stack, and `lab monitoring up` by default) scrapes that one."""
    from cassandra_recovery.lab.stack import Stack

    stack = Stack(tmp_path, env={}, receiver_port=19095, receiver_ops_port=19096)
    doc = yaml.safe_load(m.render_prometheus(stack.monitoring))
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in doc["scrape_configs"]}
    assert jobs[m.RECEIVER_JOB] == ["127.0.0.1:19096"]
    assert stack.monitoring.receiver_url == "http://127.0.0.1:19095/alerts/alertmanager"  # alerts: the main port
    assert stack.receiver_argv("token") == [
        "receiver", "--port", "19095", "--ops-port", "19096", "--token-file", "token"
    ]  # fmt: skip
    default = yaml.safe_load(m.render_prometheus(_cfg(tmp_path)))
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in default["scrape_configs"]}
    assert targets[m.RECEIVER_JOB] == [f"127.0.0.1:{m.RECEIVER_OPS_PORT}"] != ["127.0.0.1:9095"]


def test_the_receiver_command_takes_an_ops_port() -> None:
    args = build_parser().parse_args(["receiver", "--port", "9095", "--ops-port", "9096"])
    assert (args.port, args.ops_port) == (9095, 9096)
