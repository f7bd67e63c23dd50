"""The shipped Prometheus rules: valid for promtool, unit-tested by promtool, labelled and annotated alike."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from cassandra_recovery.lab.monitoring import RULES_FILE
from tests import faults as F

pytestmark = pytest.mark.area("monitoring")

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (bin/install installs it)")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=RULES_FILE.parent, env={"LANG": "C"}
    )


@needs_promtool
def test_promtool_check_rules() -> None:
    r = _promtool("check", "rules", str(RULES_FILE))
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
def test_promtool_rule_unit_tests_pass() -> None:
    # Includes the dead-man's switch: silent while the heartbeat is scraped, firing 10 s after it goes stale.
    r = _promtool("test", "rules", "rules.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_has_severity_summary_and_description() -> None:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} >= {
        "CassandraNodeConfirmedDown",
        "CassandraHintsAccumulating",
        "CassandraHintsCritical",
        "CassandraDroppedMutationsGrowing",
        "CassandraRecoveryDetectorHeartbeatStale",
        "CassandraRecoveryDetectorAbsent",
        "CassandraRecoveryReceiverSpoolPending",
        "CassandraRecoveryReceiverRejecting",
    }
    for a in alerts:
        assert a["labels"]["severity"] in ("critical", "warning"), a["alert"]
        assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]
        assert "for" in a, a["alert"]


def test_detector_alerts_keep_the_cluster_label() -> None:
    # Aggregations must keep `cluster`; only absent() and receiver alerts rely on the external label.
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(RULES_FILE.read_text())["groups"]}
    for rule in groups["cassandra-recovery-detector"]:
        if "absent(" not in rule["expr"]:
            assert "by (cluster" in rule["expr"], rule["alert"]


@pytest.mark.fault(F.DETECTOR_DOWN)
def test_dead_man_watches_the_detector_heartbeat() -> None:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r.get("alert") == "CassandraRecoveryDetectorAbsent"]
    assert rule["expr"] == 'absent(cr_detector_last_tick_timestamp_seconds{job="cassandra-recovery-detector"})'
