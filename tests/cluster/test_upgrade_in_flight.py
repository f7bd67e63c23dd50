"""An upgrade with a run in flight: a replacement approval suspended by the version before migrations (its
results pickled, its tables made at the call sites) is resumed by this version after `db upgrade`, and the
incident ends resolved with the data converged.

The previous version is the last commit before versioned migrations, extracted with `git archive` and served
from its own directory (its `cassandra_recovery`, `flows` and `tasks` come first on its path).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cassandra_recovery.degraded.compare import Comparer
from cassandra_recovery.degraded.workload import WorkloadSpec, run_workload
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.registry import lab_cluster_config
from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import service_parts
from tests import faults as F
from tests.cluster.incident_env import close_open_incident, prefect_api, wait_for
from tests.cluster.test_recovery import _alive, _deployment_exists, _flow_run_pids, _flow_run_state
from tests.migrated import migrated

pytestmark = pytest.mark.area("incident")
ROOT = Path(__file__).resolve().parents[2]
BEFORE_MIGRATIONS = "09d098ab6e8ff497bc91cec6bdc3f0f43ae91640"  # main just before versioned migrations
DOMAIN = {"KEYSPACE": "shop_upgrade", "ORDERS_TABLE": "orders_upg", "OUTBOX_TABLE": "outbox_upg",
          "POLICY_TABLE": "policy_upg"}  # fmt: skip


def _previous_version(into: Path) -> Path:
    """The previous commit's tree (no .git): `git archive` of the pinned commit."""
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE_MIGRATIONS],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(into, filter="data")
    return into


class Served:
    """`cassandra-recovery serve` of one version: from its own tree, which comes first on its path."""

    def __init__(self, tree: Path, env: dict[str, str], log: Path) -> None:
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        env = {**env, "PYTHONPATH": str(tree)}
        argv = [sys.executable, "-m", "cassandra_recovery.cli", "serve"]
        self.proc = subprocess.Popen(argv, env=env, cwd=tree, stdout=self.log, stderr=self.log)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def env(prefect_server: dict[str, str]) -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in DOMAIN.items():
            mp.setenv(f"CASSANDRA_RECOVERY_DOMAIN__{k}", v)
        yield {**os.environ, **prefect_server, "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.own_lab
@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION, F.NODE_KILLED)
def test_a_replacement_approval_suspended_by_the_previous_version_is_resumed_by_this_one(
    lab: Lab, env: dict[str, str], tmp_path: Path
) -> None:
    lab.down()
    lab.up()  # a fresh 3-node lab: the replacement changes its topology, and the lab goes down at the end
    old_tree = _previous_version(tmp_path / "previous")
    cluster = lab_cluster_config(lab.config)
    parts = service_parts(migrated(Settings()))  # the orders written before the outage (the module's names)
    store = IncidentStore(parts.pg.pool)
    old: Served | None = None
    new: Served | None = None
    try:
        close_open_incident(store, cluster.id)
        parts.empty()
        run_workload(parts.service, WorkloadSpec(rate=200, operations=300, keys=300, read_ratio=0.0), relay=parts.relay)
        old = Served(old_tree, env, ROOT / ".pytest-serve-previous.log")
        wait_for(lambda: _deployment_exists(env), 90, "the previous version's incident deployment")
        run = _suspend_for_approval(lab, env, cluster.id)
        incident = store.open_for(cluster.id)
        assert incident is not None and [e.kind for e in store.events(incident.id)].count("approval_requested") == 1
        old.stop()
        old = None

        upgrade = subprocess.run(
            [sys.executable, "-m", "cassandra_recovery.cli", "db", "upgrade"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr
        new = Served(ROOT, env, ROOT / ".pytest-serve.log")
        from prefect.flow_runs import resume_flow_run

        with prefect_api(env):
            resume_flow_run(run.id, run_input={"approved": True, "approver": "pytest-upgrade", "note": "new version"})
        wait_for(lambda: _flow_run_state(env, run.id) == "COMPLETED", 900, "the resumed run to finish", 3)
        events = store.events(incident.id)
        assert [e.data["approver"] for e in events if e.kind == "approval_decided"] == ["pytest-upgrade"]
        assert [e.data["dead_address"] for e in events if e.kind == "node_replaced"] == ["127.0.0.4"]
        assert store.get(incident.id).state.value in ("monitoring", "resolved")
        parts.cql.session.cluster.refresh_nodes()
        res = Comparer(parts.pg.pool, parts.cql, parts.pg.store.cfg).run(chunks=16).as_dict()
        assert res["equal"] and res["rows_compared"]["postgres"] == res["rows_compared"]["cassandra"] > 0, res
    finally:
        for served in (old, new):
            if served is not None:
                served.stop()
        parts.close()
        lab.down()


def _suspend_for_approval(lab: Lab, env: dict[str, str], cluster_id: str) -> Any:
    from prefect.deployments import run_deployment

    from deployments.serve import INCIDENT_DEPLOYMENT

    node3 = lab.node("node3")
    lab.kill("node3")
    lab.wait_seen(node3, up=False)
    params = {"cluster_id": cluster_id, "trigger": {"source": "test", "nodes": ["node3"]}, "heal_timeout_s": 15,
              "approval_timeout_s": 900, "follow_up_s": 0}  # fmt: skip
    with prefect_api(env):
        run: Any = run_deployment(INCIDENT_DEPLOYMENT, parameters=params, timeout=0)  # sync here: a FlowRun
    wait_for(lambda: _flow_run_state(env, run.id) == "PAUSED", 300, "the previous version to suspend the run", 2)
    wait_for(lambda: not _alive(_flow_run_pids(run.id)), 60, "the suspended run's process to exit")
    return run
