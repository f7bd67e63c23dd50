"""The composition seams: the library reaches the workflow engine through the orchestrator chosen by settings;
deployment names come from one module; no flow defaults to a particular cluster."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from prefect import Flow

import flows
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.orchestrator import load_orchestrator
from cassandra_recovery.settings import Settings
from deployments import names
from deployments.orchestrator import PrefectOrchestrator
from flows.clusters import cluster_named

pytestmark = pytest.mark.area("incident")


def _flows() -> dict[str, Flow]:  # type: ignore[type-arg]
    found = {}
    for info in pkgutil.iter_modules(flows.__path__, "flows."):
        for obj in vars(importlib.import_module(info.name)).values():
            if isinstance(obj, Flow):
                found[obj.name] = obj
    return found


def test_the_orchestrator_is_the_one_the_settings_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    engine = load_orchestrator(Settings())
    assert isinstance(engine, PrefectOrchestrator)
    with pytest.raises(ConfigError, match=r"unknown orchestrator 'airflow': registered are prefect"):
        load_orchestrator(Settings(orchestrator="airflow"))


def test_every_served_deployment_is_named_after_its_flow_in_one_place() -> None:
    by_flow = _flows()
    assert set(names.SERVED) <= set(by_flow), "a served name with no flow of that name"
    assert names.INCIDENT_DEPLOYMENT == "incident-response/incident-response"
    assert names.FOLLOW_UP_DEPLOYMENT == names.address(names.FOLLOW_UP_VERIFICATION)


def test_served_deployments_are_the_named_ones() -> None:
    from deployments.serve import build_deployments

    built = build_deployments()
    assert sorted(d.name for d in built) == sorted(names.SERVED)
    assert all(d.name == d.flow_name for d in built)


def test_no_flow_defaults_to_a_cluster_id() -> None:
    for name, f in _flows().items():
        param = inspect.signature(f.fn).parameters.get("cluster_id")
        if param is not None and param.default is not inspect.Parameter.empty:  # a required id names its cluster
            assert param.default is None, f"{name} defaults cluster_id to {param.default!r}"


def test_a_run_without_a_cluster_acts_on_the_default_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASSANDRA_RECOVERY_DEFAULT_CLUSTER", "prod-eu")
    assert cluster_named(None) == "prod-eu" and cluster_named("") == "prod-eu"
    assert cluster_named("lab") == "lab" and cluster_named("other") == "other"


def test_the_lab_is_a_cluster_source_like_any_other(tmp_path: Path) -> None:
    lab = {"lab": {"base_dir": str(tmp_path / "lab")}}
    assert Settings(**lab).cluster("lab").provisioner == "lab"  # type: ignore[arg-type]
    assert "lab" in Settings(**lab).cluster_ids()  # type: ignore[arg-type]
    without = Settings(cluster_sources=[], **lab)  # type: ignore[arg-type]
    assert without.cluster_ids() == set()
    with pytest.raises(ConfigError, match="unknown cluster 'lab'; registered clusters: $"):
        without.cluster("lab")
    with pytest.raises(ConfigError, match="unknown cluster source 'cloud': registered are lab"):
        Settings(cluster_sources=["cloud"], **lab).cluster("prod")  # type: ignore[arg-type]


def test_a_node_is_replaced_by_the_provisioner_its_cluster_names(tmp_path: Path) -> None:
    from cassandra_recovery.lab.provisioner import LabProvisioner
    from cassandra_recovery.wiring import provisioner_for

    prod = {"id": "prod", "contact_points": ["10.0.0.1"], "local_datacenter": "dc1",
            "nodes": [{"name": "n1", "address": "10.0.0.1"}]}  # fmt: skip
    settings = Settings(lab={"base_dir": str(tmp_path / "lab")}, clusters={"prod": prod})  # type: ignore[arg-type]
    assert isinstance(provisioner_for(settings, "lab"), LabProvisioner)
    with pytest.raises(ConfigError, match="cluster prod has no node provisioner: replace 10.0.0.1 by hand"):
        provisioner_for(settings, "prod").replace("10.0.0.1")
    odd = Settings(clusters={"prod": {**prod, "provisioner": "k8s"}})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown node provisioner 'k8s': registered are lab, none"):
        provisioner_for(odd, "prod")


def test_the_postgres_password_comes_from_settings_or_its_named_source(tmp_path: Path) -> None:
    from cassandra_recovery.lab.postgres import lab_password

    lab = {"base_dir": str(tmp_path / "lab")}
    (tmp_path / "lab").mkdir()
    generated = lab_password(Settings(lab=lab).lab)  # type: ignore[arg-type]
    assert f"password={generated}" in Settings(lab=lab).postgres_conninfo()  # type: ignore[arg-type]
    given = Settings(lab=lab, postgres={"password": "s3cret"})  # type: ignore[arg-type]
    assert "password=s3cret" in given.postgres_conninfo()
    none = Settings(lab=lab, postgres={"password_source": None})  # type: ignore[arg-type]
    assert "password" not in none.postgres_conninfo()


def test_a_process_shares_one_cassandra_client_per_cluster_configuration() -> None:
    """Tasks of one flow run share the process's client (no session per task); a changed configuration gets its
    own. Nothing connects until a statement runs."""
    from cassandra_recovery.settings import ClusterConfig, NodeAccess
    from cassandra_recovery.wiring import close_process_cql, process_cql

    nodes = [NodeAccess(name="n1", address="127.0.0.250", jmx_host="127.0.0.1", jmx_port=7199)]
    prod = ClusterConfig(id="prod", contact_points=["127.0.0.250"], local_datacenter="dc1", nodes=nodes)
    try:
        assert process_cql(prod) is process_cql(prod.model_copy())
        assert process_cql(prod) is not process_cql(prod.model_copy(update={"port": 9142}))
    finally:
        close_process_cql()
