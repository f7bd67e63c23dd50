"""The Reaper client against a local server following Reaper's documented REST API (tests/fakes/reaper_server.py),
and mitigation's bookkeeping: pause only what is active, record which ids, resume exactly those; Reaper unreachable
is reported, never raised."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pydantic import SecretStr

from cassandra_recovery.clients.reaper import ReaperClient, ReaperError
from cassandra_recovery.mitigation.reaper import (
    INTENT,
    PAUSED,
    RESUMED,
    pause_reaper,
    paused_by_incident,
    resume_reaper,
)
from cassandra_recovery.settings import ReaperConfig
from tests import faults as F
from tests.fakes.reaper_server import CLUSTER, TOKEN, FakeReaper

pytestmark = pytest.mark.area("incident")

SECRET = "s3cret-pw"  # noqa: S105 - the fake's password


def schedules() -> dict[str, dict[str, Any]]:
    return {
        "s-active": {"state": "ACTIVE", "keyspace_name": "shop"},
        "s-by-operator": {"state": "PAUSED", "keyspace_name": "shop"},  # paused before the incident
    }


def runs() -> dict[str, dict[str, Any]]:
    return {"r-running": {"state": "RUNNING", "keyspace_name": "shop"}, "r-done": {"state": "DONE"}}


def client(reaper: FakeReaper, auth: bool = False) -> ReaperClient:
    creds: dict[str, Any] = {"username": "admin", "password": SecretStr(SECRET)} if auth else {}
    return ReaperClient(ReaperConfig(url=reaper.url, cluster_name=CLUSTER, timeout_s=5, **creds))


class Timeline(list[tuple[str, dict[str, Any]]]):
    def __call__(self, kind: str, data: Any) -> None:
        self.append((kind, dict(data)))

    def events(self) -> list[dict[str, Any]]:
        return [{"kind": k, "data": d} for k, d in self]


@pytest.mark.parametrize("bearer_only", [False, True], ids=["session cookie", "JWT bearer (Reaper 3.x+)"])
def test_login_then_list_and_change_states_without_the_secret_in_any_url(bearer_only: bool) -> None:
    with FakeReaper(schedules(), runs(), auth=("admin", SECRET), bearer_only=bearer_only) as fake:
        c = client(fake, auth=True)
        assert {(s.id, s.state) for s in c.schedules()} == {("s-active", "ACTIVE"), ("s-by-operator", "PAUSED")}
        assert [r.id for r in c.running_runs()] == ["r-running"]
        assert c.set_schedule_state("s-active", "PAUSED") is True
        assert c.set_schedule_state("s-active", "PAUSED") is False  # 204: already paused
        assert c.set_run_state("r-running", "PAUSED") is True
        assert c.set_run_state("r-running", "PAUSED") is False  # 304
        assert fake.schedules["s-active"]["state"] == "PAUSED" and fake.runs["r-running"]["state"] == "PAUSED"
    logins = [r for r in fake.requests if r[1] == "/login"]
    assert len(logins) == 1 and SECRET in logins[0][2]  # in the form body only
    assert not any(SECRET in path for _, path, _ in fake.requests)
    assert ("GET", f"/repair_schedule?clusterName={CLUSTER}", "") in fake.requests
    assert ("PUT", "/repair_schedule/s-active?state=PAUSED", "") in fake.requests
    assert ("PUT", "/repair_run/r-running/state/PAUSED", "") in fake.requests
    if bearer_only:
        assert c._bearer == TOKEN


@pytest.mark.fault(F.REAPER_FAILING)
def test_bad_credentials_are_refused_without_echoing_the_password() -> None:
    with FakeReaper(schedules(), auth=("admin", "other")) as fake, pytest.raises(ReaperError) as e:
        client(fake, auth=True).schedules()
    assert "refused (401)" in str(e.value) and SECRET not in str(e.value)


@pytest.mark.fault(F.REAPER_FAILING)
def test_a_refused_transition_and_an_unknown_id_raise_with_the_status() -> None:
    with FakeReaper(schedules(), runs()) as fake:
        c = client(fake)
        with pytest.raises(ReaperError, match="409"):
            c.set_run_state("r-done", "RUNNING")
        with pytest.raises(ReaperError, match="404"):
            c.set_schedule_state("nope", "ACTIVE")


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_pause_then_resume_touches_only_what_was_active_and_records_the_ids() -> None:
    with FakeReaper(schedules(), runs()) as fake:
        timeline = Timeline()
        paused = pause_reaper(client(fake), timeline)
        assert paused == {"schedules": ["s-active"], "runs": ["r-running"], "unchanged": [], "errors": []}
        assert [k for k, _ in timeline] == [INTENT, PAUSED]
        assert timeline[0][1] == {"schedules": ["s-active"], "runs": ["r-running"]}  # before anything changed
        assert {k: v["state"] for k, v in fake.schedules.items()} == {"s-active": "PAUSED", "s-by-operator": "PAUSED"}

        resumed = resume_reaper(client(fake), timeline.events(), timeline)
        assert resumed == {"schedules": ["s-active"], "runs": ["r-running"], "unchanged": [], "errors": []}
        assert fake.schedules["s-by-operator"]["state"] == "PAUSED"  # the operator's pause stays
        assert fake.schedules["s-active"]["state"] == "ACTIVE" and fake.runs["r-running"]["state"] == "RUNNING"
        assert paused_by_incident(timeline.events()) == ([], [])  # nothing left to give back


def test_a_second_mitigation_of_the_same_incident_keeps_the_first_ids() -> None:
    with FakeReaper(schedules(), runs()) as fake:
        timeline = Timeline()
        pause_reaper(client(fake), timeline)
        again = pause_reaper(client(fake), timeline)  # the run mitigates after the detector did
        assert again["schedules"] == [] and again["runs"] == []
        assert paused_by_incident(timeline.events()) == (["s-active"], ["r-running"])


@pytest.mark.fault(F.REAPER_FAILING)
def test_reaper_unreachable_is_reported_not_raised() -> None:
    c = ReaperClient(ReaperConfig(url=_closed_port(), cluster_name=CLUSTER, timeout_s=2))
    timeline = Timeline()
    done = pause_reaper(c, timeline)
    assert done["schedules"] == [] and len(done["errors"]) == 1 and "not reachable" in done["errors"][0]
    assert timeline == [(PAUSED, done)]
    events = [{"kind": PAUSED, "data": {"schedules": ["s-1"], "runs": [], "unchanged": [], "errors": []}}]
    back = resume_reaper(c, events, timeline)
    assert back["schedules"] == [] and "schedule s-1" in back["errors"][0]
    assert paused_by_incident([*events, {"kind": RESUMED, "data": back}]) == (["s-1"], [])  # still owed


def test_an_intent_without_its_outcome_still_gets_resumed() -> None:
    """The process died between recording what it would pause and recording what Reaper changed."""
    events = [
        {"kind": INTENT, "data": {"schedules": ["s-1", "s-2"], "runs": ["r-1"]}},
        {"kind": INTENT, "data": {"schedules": [], "runs": []}},  # the next attempt found them paused already
        {"kind": PAUSED, "data": {"schedules": [], "runs": [], "unchanged": [], "errors": []}},
    ]
    assert paused_by_incident(events) == (["s-1", "s-2"], ["r-1"])
