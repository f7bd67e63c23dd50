"""Nodes an incident's triggers reported down: opening trigger, joined triggers, resolved alerts ignored."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.reported import episode_start, reported_down

pytestmark = pytest.mark.area("incident")


def test_opening_and_joined_triggers_in_first_seen_order() -> None:
    trigger = {"source": "detector", "nodes": ["node3"]}
    events = [
        {"kind": "opened", "data": {"nodes": ["ignored-opened-is-the-trigger"]}},
        {"kind": "joined", "data": {"source": "alert:alertmanager", "status": "firing", "nodes": ["node3", "node2"]}},
        {"kind": "transition", "data": {"nodes": ["node1"]}},
    ]
    assert reported_down(trigger, events) == ["node3", "node2"]


def test_resolved_alerts_and_malformed_nodes_add_nothing() -> None:
    events = [
        {"kind": "joined", "data": {"status": "resolved", "nodes": ["node1"]}},
        {"kind": "joined", "data": {"nodes": "node2"}},
        {"kind": "joined", "data": {"nodes": [None, "", 3, "127.0.0.4"]}},
        {"kind": "joined", "data": None},
    ]
    assert reported_down({"source": "manual"}, events) == ["127.0.0.4"]
    assert reported_down(None, []) == []


def test_a_new_episode_is_measured_from_the_alerts_start_never_later_than_now() -> None:
    now = "2026-12-06T12:00:00+00:00"
    assert episode_start({"starts_at": "2026-12-06T11:58:30+00:00"}, default=now) == "2026-12-06T11:58:30+00:00"
    # a clock ahead of ours, a naive time or garbage: the run's own time
    assert episode_start({"starts_at": "2026-12-06T12:05:00+00:00"}, default=now) == now
    assert episode_start({"starts_at": "2026-12-06T11:58:30"}, default=now) == now
    assert episode_start({"starts_at": "yesterday"}, default=now) == now
    assert episode_start({"source": "manual"}, default=now) == now
    assert episode_start(None, default=now) == now
