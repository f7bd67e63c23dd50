"""The resumer's one question to Prefect: the flow runs in a state, of one flow or of any (newest first when
asked), at most 100 per pass."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort


def runs_in_state(
    client: Any, state: str | list[str], flow_name: str | None = None, newest_first: bool = False
) -> list[Any]:
    """Flow runs whose state type is `state` (RUNNING, FAILED, CRASHED, PAUSED, ...) or one of several."""

    flows = FlowFilter(name=FlowFilterName(any_=[flow_name])) if flow_name else None
    in_state = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType(x) for x in ([state] if isinstance(state, str) else state)])
        )
    )
    sort = FlowRunSort.EXPECTED_START_TIME_DESC if newest_first else None
    return list(client.read_flow_runs(flow_filter=flows, flow_run_filter=in_state, sort=sort, limit=100))
