"""The composition seams: the library reaches the workflow engine through the orchestrator chosen by settings;
deployment names come from one module; no flow defaults to a particular cluster."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

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
