"""The Prefect boundary is typed (scripts/typed_boundary.py), and its shapes are what Prefect and pydantic see:
flow parameter schemas built from the TypedDicts of cassandra_recovery/contracts.py, malformed input refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydantic
import pytest
from prefect.utilities.callables import parameter_schema

from cassandra_recovery.contracts import PlanDoc, Trigger

pytestmark = pytest.mark.area("incident")
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "typed_boundary.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def test_the_repository_has_no_any_at_the_boundary() -> None:
    done = _run("--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no Any" in done.stdout


def test_a_flow_or_task_with_any_or_no_annotation_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import Any\nfrom prefect import flow, task\n\n\n"
        "@task(name='t')\ndef t(x: dict[str, Any]) -> int:\n    return 1\n\n\n"
        "@flow\ndef f(y) -> 'list[Any]':\n    return []\n\n\n"
        "def helper(z: Any) -> Any:  # not at the boundary\n    return z\n"
    )
    done = _run("--check", str(bad))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert f"{bad}:6: t: parameter x: dict[str, Any]" in lines
    assert f"{bad}:11: f: parameter y is not annotated" in lines
    assert f"{bad}:11: f: returns 'list[Any]'" in lines
    assert len(lines) == 3  # the undecorated helper is not the boundary


def test_flow_parameter_schemas_come_from_the_contracts() -> None:
    from flows.incident import incident_response
    from flows.recover import recover

    schema = parameter_schema(incident_response).model_dump_for_openapi()
    trigger = schema["definitions"]["Trigger"]
    assert {"source", "nodes", "starts_at", "incident_id"} <= set(trigger["properties"])
    assert trigger["required"] == ["source"]
    plan = parameter_schema(recover).model_dump_for_openapi()["definitions"]["PlanDoc"]
    assert {"action", "targets", "scope"} <= set(plan["properties"])


def test_scheduled_repair_parameters_match_the_served_schedules() -> None:
    from flows.scheduled_repair import scheduled_repair

    props = parameter_schema(scheduled_repair).model_dump_for_openapi()["properties"]
    served = {"schedule", "cluster_id", "keyspaces", "kind", "intensity", "blackouts", "windows", "timezone"}
    assert served | {"segments_per_range", "segment_timeout_s", "max_attempts"} == set(props)
    assert props["blackouts"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}


def test_pydantic_refuses_a_malformed_trigger_and_keeps_unknown_keys() -> None:
    adapter = pydantic.TypeAdapter(Trigger)
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python({"source": "detector", "nodes": "node3"})
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python({"nodes": ["node3"]})  # no source
    kept = adapter.validate_python({"source": "detector", "nodes": ["node3"], "newer_field": 1})
    assert kept == {"source": "detector", "nodes": ["node3"], "newer_field": 1}
    assert type(kept) is dict


def test_a_plan_as_the_assessment_writes_it_validates() -> None:
    plan = {
        "action": "repair",
        "targets": ["127.0.0.3"],
        "scope": [{"keyspace": "app", "ranges": [{"start": -5, "end": 7, "replicas": ("127.0.0.3", "127.0.0.1")}]}],
        "reasons": ["hints cannot be trusted"],
        "cl_impact": {"app": {"ranges": 3, "unavailable": {"ALL": 1}}},
        "classifications": [{"node": "127.0.0.3", "kind": "node_failure", "reason": "refused"}],
        "app": {"breaker_state": None, "fallback_share": None, "queue_age_s": 1.5},
        "held_action": None,
    }
    assert pydantic.TypeAdapter(PlanDoc).validate_python(plan) == plan
