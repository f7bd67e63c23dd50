"""The UI's incident actions (flows/operator.py): a form per action, a name required and recorded as unverified."""

from __future__ import annotations

import pytest
from prefect.utilities.callables import parameter_schema

from flows.operator import incident_ack, incident_escalate, incident_hand_back, incident_resolve, ui_actor

pytestmark = pytest.mark.area("incident")


@pytest.mark.parametrize("flow", [incident_ack, incident_escalate, incident_hand_back, incident_resolve])
def test_every_action_form_requires_the_persons_name(flow: object) -> None:
    schema = parameter_schema(flow.fn).model_dump()  # type: ignore[attr-defined]
    assert {"incident_id", "your_name"} <= set(schema["required"])
    assert schema["properties"]["your_name"]["minLength"] == 1


def test_escalate_hand_back_and_resolve_require_a_reason_and_resolve_is_verified_by_default() -> None:
    for flow, field in ((incident_escalate, "reason"), (incident_hand_back, "note"), (incident_resolve, "note")):
        assert field in parameter_schema(flow.fn).model_dump()["required"]
    assert parameter_schema(incident_resolve.fn).model_dump()["properties"]["unverified"]["default"] is False


def test_the_timeline_records_a_ui_name_as_unverified() -> None:
    assert ui_actor("  alice ") == "alice (unverified: Prefect UI)"
