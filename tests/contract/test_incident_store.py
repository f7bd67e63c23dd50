"""Contract tests of the incident store against the real PostgreSQL.

The tables carry a prefix unique to the test session (dropped at the end), and every test uses its own
cluster id, so tests never see each other's incidents. Lease expiry is tested with a 1 s TTL and a 1.2 s
wait; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, make_pool
from cassandra_recovery.errors import ConfigError, RecoveryError
from cassandra_recovery.incident.store import (
    Incident,
    IncidentNotFound,
    IncidentStore,
    Lease,
    LeaseLost,
    StaleFencingToken,
    StateConflict,
)
from cassandra_recovery.lab.postgres import _clusters, ensure_postgres
from cassandra_recovery.logic.incident_states import IncidentState, InvalidTransition
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.names import SchemaNames
from tests import faults as F
from tests.migrated import drop_version_tables, migrated_names, owner_conn

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("incident"),
]

S = IncidentState
PREFIX = f"inc_t{uuid.uuid4().hex[:10]}"
NAMES = SchemaNames(incident_prefix=PREFIX)
REPO = Path(__file__).resolve().parents[2]


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> Settings:
    s = Settings()
    was_online = any(c.online for c in _clusters(s.postgres.port))
    ensure_postgres(s)  # idempotent: starts PostgreSQL when it was stopped
    if not was_online:
        request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # conftest stops it at the end
    return s


@pytest.fixture(scope="session")
def pool(settings: Settings) -> Iterator[ConnectionPool]:
    p = make_pool(settings, max_size=12)
    try:
        yield p
    finally:
        p.close()
        with owner_conn(settings) as conn:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}, {}, {}; DROP FUNCTION IF EXISTS {}()").format(
                    sql.Identifier(f"{PREFIX}_reports"),
                    sql.Identifier(f"{PREFIX}_events"),
                    sql.Identifier(f"{PREFIX}s"),
                    sql.Identifier(f"{PREFIX}_events_append_only"),
                )
            )
            drop_version_tables(conn, NAMES)


@pytest.fixture(scope="session")
def store(settings: Settings, pool: ConnectionPool) -> IncidentStore:
    migrated_names(settings, NAMES)
    return IncidentStore(pool, prefix=PREFIX)


@pytest.fixture
def cluster_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _rows(pool: ConnectionPool, query: sql.SQL | sql.Composed, params: Any = None) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        rows = fetch_all(conn.execute(query, params))
        conn.rollback()
    return rows


def _open_count(pool: ConnectionPool, store: IncidentStore, cluster_id: str) -> int:
    q = sql.SQL("SELECT count(*) AS n FROM {} WHERE cluster_id = %s AND closed_at IS NULL")
    return int(_rows(pool, q.format(sql.Identifier(store.incidents_table)), (cluster_id,))[0]["n"])


def _opened(store: IncidentStore, cluster_id: str) -> Incident:
    incident, created = store.open_or_join(cluster_id, {"alert": "node down", "node": "n1"}, "detector")
    assert created
    return incident


def _lease(store: IncidentStore, incident_id: str, holder: str = "flow-a", ttl_s: float = 60.0, **kw: Any) -> Lease:
    lease = store.acquire_lease(incident_id, holder, ttl_s, **kw)
    assert lease is not None
    return lease


def _expire_lease(store: IncidentStore, pool: ConnectionPool, incident_id: str) -> None:
    """Time passes for the lease: its expiry moves into the past (no short TTL raced against a busy machine)."""
    q = sql.SQL("UPDATE {} SET lease_expires_at = clock_timestamp() - interval '1 millisecond' WHERE id = %s")
    with pool.connection() as conn:
        assert conn.execute(q.format(sql.Identifier(store.incidents_table)), (incident_id,)).rowcount == 1


def _run_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..n-1) in n threads released together; re-raise the first error."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


# --- open or join ---------------------------------------------------------------------------------------


def test_open_then_join(store: IncidentStore, cluster_id: str) -> None:
    assert store.open_for(cluster_id) is None
    first, created = store.open_or_join(cluster_id, {"alert": "node down"}, "detector")
    assert created
    assert (first.cluster_id, first.state, first.version, first.fencing_token) == (cluster_id, S.DETECTED, 1, 0)
    assert first.closed_at is None and first.trigger == {"alert": "node down"} and first.plan is None
    assert first.lease_holder is None and first.slack_channel is None
    again, created = store.open_or_join(cluster_id, {"alert": "hints growing"}, "probe")
    assert not created and again == first  # joining changes nothing but the timeline
    assert store.open_for(cluster_id) == first == store.get(first.id)
    events = store.events(first.id)
    assert [(e.kind, e.actor, e.data, e.fencing_token) for e in events] == [
        ("opened", "detector", {"alert": "node down"}, None),
        ("joined", "probe", {"alert": "hints growing"}, None),
    ]


@pytest.mark.fault(F.CONCURRENT_WORKERS)
def test_eight_threads_open_exactly_one_incident(store: IncidentStore, pool: ConnectionPool, cluster_id: str) -> None:
    results = _run_threads(8, lambda i: store.open_or_join(cluster_id, {"n": i}, f"thread-{i}"))
    assert sum(created for _, created in results) == 1
    assert len({inc.id for inc, _ in results}) == 1
    assert _open_count(pool, store, cluster_id) == 1
    events = store.events(results[0][0].id)
    assert sorted(e.kind for e in events) == ["joined"] * 7 + ["opened"]
    assert events[0].kind == "opened"  # joiners wait for the opener's commit
    assert sorted(e.data["n"] for e in events) == list(range(8))  # every trigger is in the timeline
    assert {e.actor for e in events} == {f"thread-{i}" for i in range(8)}


# Run in a separate interpreter: open_or_join from 4 threads once the parent says "go".
_CHILD = """
import json, sys, threading
from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.settings import Settings

prefix, cluster, name = sys.argv[1:4]
pool = make_pool(Settings(), min_size=4, max_size=4)
store = IncidentStore(pool, prefix=prefix)
print("ready", flush=True)
sys.stdin.readline()
barrier, out = threading.Barrier(4), []
def work(i):
    barrier.wait(timeout=30)
    inc, created = store.open_or_join(cluster, {"proc": name, "n": i}, f"{name}-{i}")
    out.append([inc.id, created])
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join(timeout=60)
pool.close()
print(json.dumps(out), flush=True)
"""


@pytest.mark.fault(F.CONCURRENT_WORKERS)
def test_two_processes_open_exactly_one_incident(store: IncidentStore, pool: ConnectionPool, cluster_id: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, PREFIX, cluster_id, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for name in ("proc-a", "proc-b")
    ]
    try:
        for p in procs:  # both connected before either starts
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    results = [r for out, _ in outputs for r in json.loads(out.strip().splitlines()[-1])]
    assert len(results) == 8
    assert sum(created for _, created in results) == 1
    assert len({iid for iid, _ in results}) == 1
    assert _open_count(pool, store, cluster_id) == 1
    events = store.events(results[0][0])
    assert sorted(e.kind for e in events) == ["joined"] * 7 + ["opened"]
    assert sorted((e.data["proc"], e.data["n"]) for e in events) == [
        (p, i) for p in ("proc-a", "proc-b") for i in range(4)
    ]


def test_different_clusters_get_different_incidents(store: IncidentStore) -> None:
    clusters = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(4)]
    results = _run_threads(4, lambda i: store.open_or_join(clusters[i], {"n": i}, "detector"))
    assert all(created for _, created in results)
    assert len({inc.id for inc, _ in results}) == 4
    assert [inc.cluster_id for inc, _ in results] == clusters
    assert [store.open_for(c) for c in clusters] == [inc for inc, _ in results]


def test_after_resolve_a_new_trigger_opens_a_new_incident(
    store: IncidentStore, pool: ConnectionPool, cluster_id: str
) -> None:
    first = _opened(store, cluster_id)
    lease = _lease(store, first.id)
    path = [S.DETECTED, S.ASSESSING, S.RECOVERING, S.VERIFYING, S.RESOLVED]
    for old, new in zip(path, path[1:], strict=False):
        done = store.transition(first.id, old, new, lease, {"step": new.value})
        assert done.state is new
    assert done.closed_at is not None and done.closed_at >= done.opened_at
    assert done.version == first.version + 4
    assert store.open_for(cluster_id) is None
    second, created = store.open_or_join(cluster_id, {"alert": "again"}, "detector")
    assert created and second.id != first.id and second.state is S.DETECTED
    assert store.get(first.id).state is S.RESOLVED  # the old one stays closed
    assert store.open_for(cluster_id) == second
    assert _open_count(pool, store, cluster_id) == 1
    assert [e.kind for e in store.events(second.id)] == ["opened"]


def test_escalated_incident_stays_open_and_is_joined(store: IncidentStore, cluster_id: str) -> None:
    inc = _opened(store, cluster_id)
    flow = _lease(store, inc.id, "flow")
    escalated = store.transition(inc.id, S.DETECTED, S.ESCALATED, flow, {"why": "unknown failure"})
    assert escalated.state is S.ESCALATED and escalated.closed_at is None
    store.release_lease(flow)
    joined, created = store.open_or_join(cluster_id, {"alert": "second failure"}, "detector")
    assert not created and joined.id == inc.id and joined.state is S.ESCALATED
    human = _lease(store, inc.id, "oncall:alice")
    with pytest.raises(InvalidTransition):
        store.transition(inc.id, S.ESCALATED, S.RECOVERING, human, {})
    back = store.transition(inc.id, S.ESCALATED, S.ASSESSING, human, {"note": "handing back"})
    assert back.state is S.ASSESSING and back.closed_at is None


# --- leases and fencing ---------------------------------------------------------------------------------


@pytest.mark.fault(F.LEASE_EXPIRED)
def test_second_holder_refused_while_valid_and_granted_after_expiry(
    store: IncidentStore, pool: ConnectionPool, cluster_id: str
) -> None:
    inc = _opened(store, cluster_id)
    a = _lease(store, inc.id, "worker-a", ttl_s=60.0)
    assert a.token == 1 and a.incident_id == inc.id and a.holder == "worker-a"
    assert store.acquire_lease(inc.id, "worker-b", 60.0) is None
    assert store.acquire_lease(inc.id, "worker-a", 60.0) is None  # no re-entry without a run_key
    _expire_lease(store, pool, inc.id)
    b = _lease(store, inc.id, "worker-b", ttl_s=30.0)
    assert b.token > a.token
    row = store.get(inc.id)
    assert (row.lease_holder, row.fencing_token, row.lease_expires_at) == ("worker-b", b.token, b.expires_at)
    acquired = [e for e in store.events(inc.id) if e.kind == "lease_acquired"]
    assert [(e.actor, e.fencing_token, e.data["reason"], e.data["previous_holder"]) for e in acquired] == [
        ("worker-a", a.token, "free", None),
        ("worker-b", b.token, "expired", "worker-a"),
    ]
    with pytest.raises(LeaseLost) as info:
        store.renew_lease(a, 30.0)
    assert (info.value.token, info.value.current_token, info.value.current_holder) == (a.token, b.token, "worker-b")
    assert store.release_lease(a) is False
    assert store.get(inc.id).lease_holder == "worker-b"  # the old holder's release did nothing


@pytest.mark.fault(F.LEASE_HOLDER_HUNG)
def test_same_run_key_takes_the_lease_back_at_once_and_fences_the_old_holder(
    store: IncidentStore, cluster_id: str
) -> None:
    inc = _opened(store, cluster_id)
    old = _lease(store, inc.id, "host1:pid100", ttl_s=600.0, run_key="flow-run-7")
    assert store.get(inc.id).lease_run_key == "flow-run-7"
    assert store.acquire_lease(inc.id, "host2:pid200", 600.0, run_key="flow-run-8") is None
    assert store.acquire_lease(inc.id, "host2:pid200", 600.0) is None
    new = _lease(store, inc.id, "host2:pid200", ttl_s=600.0, run_key="flow-run-7")  # the retried run
    assert new.token > old.token
    last = store.events(inc.id)[-1]
    assert (last.kind, last.actor, last.fencing_token) == ("lease_acquired", "host2:pid200", new.token)
    assert last.data["reason"] == "same_run_key" and last.data["previous_holder"] == "host1:pid100"
    before = store.get(inc.id)
    n_events = len(store.events(inc.id))

    # the frozen process wakes up and tries to write with its old lease: all refused, nothing written
    with pytest.raises(StaleFencingToken) as info:
        store.transition(inc.id, S.DETECTED, S.ASSESSING, old, {})
    assert isinstance(info.value, LeaseLost) and isinstance(info.value, RecoveryError)
    assert (info.value.incident_id, info.value.token, info.value.current_token) == (inc.id, old.token, new.token)
    assert inc.id in str(info.value) and "host2:pid200" in str(info.value)
    with pytest.raises(StaleFencingToken):
        store.append_event(inc.id, "note", "host1:pid100", {"x": 1}, lease=old)
    with pytest.raises(StaleFencingToken):
        store.set_plan(inc.id, {"steps": ["stale"]}, old)
    with pytest.raises(StaleFencingToken):
        store.set_slack_thread(inc.id, "C1", "1.2", old)
    with pytest.raises(LeaseLost):
        store.renew_lease(old, 600.0)
    assert store.get(inc.id) == before
    assert len(store.events(inc.id)) == n_events

    # the current holder writes fine
    assert store.transition(inc.id, S.DETECTED, S.ASSESSING, new, {}).state is S.ASSESSING
    assert store.append_event(inc.id, "note", "host2:pid200", {"x": 2}, lease=new).fencing_token == new.token


def test_renew_and_release(store: IncidentStore, cluster_id: str) -> None:
    inc = _opened(store, cluster_id)
    lease = _lease(store, inc.id, "w", ttl_s=5.0)
    renewed = store.renew_lease(lease, 600.0)
    assert (renewed.token, renewed.holder, renewed.incident_id) == (lease.token, "w", inc.id)
    assert renewed.expires_at > lease.expires_at
    assert store.get(inc.id).lease_expires_at == renewed.expires_at
    assert store.acquire_lease(inc.id, "other", 5.0) is None
    assert store.release_lease(renewed) is True
    row = store.get(inc.id)
    assert (row.lease_holder, row.lease_run_key, row.lease_expires_at, row.fencing_token) == (None, None, None, 1)
    assert store.release_lease(renewed) is False  # idempotent
    with pytest.raises(LeaseLost):
        store.renew_lease(renewed, 5.0)
    with pytest.raises(StaleFencingToken):  # a released lease no longer writes
        store.set_plan(inc.id, {"steps": []}, renewed)
    other = _lease(store, inc.id, "other", ttl_s=5.0)  # free at once after a release
    assert other.token == 2
    assert [e.kind for e in store.events(inc.id)] == ["opened", "lease_acquired", "lease_released", "lease_acquired"]


@pytest.mark.fault(F.LEASE_EXPIRED)
def test_expired_lease_still_writes_while_nobody_took_over(
    store: IncidentStore, pool: ConnectionPool, cluster_id: str
) -> None:
    inc = _opened(store, cluster_id)
    lease = _lease(store, inc.id, "slow", ttl_s=60.0)
    _expire_lease(store, pool, inc.id)
    # its token is still the newest, so fencing lets it write and renew ...
    assert store.transition(inc.id, S.DETECTED, S.ASSESSING, lease, {}).state is S.ASSESSING
    renewed = store.renew_lease(lease, 60.0)
    _expire_lease(store, pool, inc.id)
    # ... until someone else is granted the lease
    _lease(store, inc.id, "fast")
    with pytest.raises(StaleFencingToken):
        store.transition(inc.id, S.ASSESSING, S.RECOVERING, renewed, {})


def test_lease_arguments_are_checked(store: IncidentStore, cluster_id: str) -> None:
    inc = _opened(store, cluster_id)
    other = _opened(store, f"{cluster_id}-other")
    for ttl in (0, -1):
        with pytest.raises(ValueError, match="ttl"):
            store.acquire_lease(inc.id, "w", ttl)
    lease = _lease(store, inc.id)
    with pytest.raises(ValueError, match="ttl"):
        store.renew_lease(lease, 0)
    _lease(store, other.id, lease.holder)  # same holder, same token number, other incident
    with pytest.raises(StaleFencingToken):
        store.set_plan(other.id, {"steps": []}, lease)


# --- compare-and-set ------------------------------------------------------------------------------------


def test_transition_compare_and_set(store: IncidentStore, cluster_id: str) -> None:
    inc = _opened(store, cluster_id)
    lease = _lease(store, inc.id)
    with pytest.raises(StateConflict) as info:
        store.transition(inc.id, S.ASSESSING, S.RECOVERING, lease, {})
    assert (info.value.incident_id, info.value.expected, info.value.actual) == (inc.id, "assessing", "detected")
    with pytest.raises(InvalidTransition) as bad:
        store.transition(inc.id, S.DETECTED, S.VERIFYING, lease, {})
    assert "detected -> verifying" in str(bad.value)
    assert store.get(inc.id) == store.open_for(cluster_id)
    assert store.get(inc.id).state is S.DETECTED and store.get(inc.id).version == 1

    # the same lease used from two threads at once: exactly one compare-and-set wins
    def attempt(i: int) -> str:
        try:
            store.transition(inc.id, S.DETECTED, S.ASSESSING, lease, {"attempt": i})
            return "won"
        except StateConflict:
            return "conflict"

    assert sorted(_run_threads(6, attempt)) == ["conflict"] * 5 + ["won"]
    assert store.get(inc.id).version == 2
    assert [e.kind for e in store.events(inc.id)].count("transition") == 1

    assert store.transition(inc.id, S.ASSESSING, S.ASSESSING, lease, {"why": "new failure"}).version == 3
    store.transition(inc.id, S.ASSESSING, S.RESOLVED, lease, {})
    for new in IncidentState:
        with pytest.raises(InvalidTransition):
            store.transition(inc.id, S.RESOLVED, new, lease, {})


def test_unknown_incident(store: IncidentStore) -> None:
    missing = f"inc-missing-{uuid.uuid4().hex}"
    with pytest.raises(IncidentNotFound, match=missing):
        store.get(missing)
    with pytest.raises(IncidentNotFound):
        store.acquire_lease(missing, "w", 5.0)
    with pytest.raises(IncidentNotFound):
        store.append_event(missing, "note", "w", {})
    assert store.events(missing) == []


def test_prefix_is_validated(pool: ConnectionPool) -> None:
    for bad in ("Incident", "inc-x", 'x"; DROP TABLE incidents; --', "", "a" * 41):
        with pytest.raises(ConfigError):
            IncidentStore(pool, prefix=bad)
    default = IncidentStore(pool)
    assert (default.incidents_table, default.events_table) == ("incidents", "incident_events")


# --- timeline -------------------------------------------------------------------------------------------


def test_timeline_order_and_contents(store: IncidentStore, cluster_id: str) -> None:
    inc = _opened(store, cluster_id)
    lease = _lease(store, inc.id, "flow-1", run_key="run-1")
    store.transition(inc.id, S.DETECTED, S.ASSESSING, lease, {"findings": ["n2 down"]})
    plan = {"steps": [{"action": "restart", "node": "n2"}], "reason": "single node down"}
    with_plan = store.set_plan(inc.id, plan, lease)
    assert with_plan.plan == plan and with_plan.version == 3
    with_thread = store.set_slack_thread(inc.id, "C0123", "1712345678.000100", lease)
    assert (with_thread.slack_channel, with_thread.slack_ts, with_thread.version) == ("C0123", "1712345678.000100", 4)
    assert with_thread.plan == plan
    store.append_event(inc.id, "note", "oncall:bob", {"text": "watching"})
    store.transition(inc.id, S.ASSESSING, S.MITIGATING, lease, {})
    store.release_lease(lease)

    events = store.events(inc.id)
    assert all(a.seq < b.seq for a, b in zip(events, events[1:], strict=False))
    assert all(e.incident_id == inc.id for e in events)
    assert [(e.kind, e.actor, e.fencing_token) for e in events] == [
        ("opened", "detector", None),
        ("lease_acquired", "flow-1", lease.token),
        ("transition", "flow-1", lease.token),
        ("plan_set", "flow-1", lease.token),
        ("slack_thread_set", "flow-1", lease.token),
        ("note", "oncall:bob", None),
        ("transition", "flow-1", lease.token),
        ("lease_released", "flow-1", lease.token),
    ]
    assert events[0].data == {"alert": "node down", "node": "n1"}
    assert events[1].data == {"reason": "free", "run_key": "run-1", "ttl_s": 60.0, "previous_holder": None}
    assert events[2].data == {"from": "detected", "to": "assessing", "data": {"findings": ["n2 down"]}}
    assert events[3].data == {"plan": plan}
    assert events[4].data == {"channel": "C0123", "ts": "1712345678.000100"}
    assert events[5].data == {"text": "watching"}
    assert events[6].data == {"from": "assessing", "to": "mitigating", "data": {}}
    assert all(e.at.tzinfo is not None for e in events)


def test_events_table_rejects_update_delete_and_truncate(
    store: IncidentStore, pool: ConnectionPool, cluster_id: str, settings: Settings
) -> None:
    """The processes' role has no such privilege at all; the migration role, which has, meets the trigger."""
    inc = _opened(store, cluster_id)
    store.append_event(inc.id, "note", "tester", {"text": "keep me"})
    before = store.events(inc.id)
    ev = sql.Identifier(store.events_table)
    statements = [
        sql.SQL("UPDATE {} SET kind = 'forged' WHERE incident_id = %s").format(ev),
        sql.SQL("DELETE FROM {} WHERE incident_id = %s").format(ev),
        sql.SQL("TRUNCATE {}").format(ev),
    ]
    for stmt in statements:
        with pool.connection() as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt, (inc.id,) if "%s" in stmt.as_string(conn) else None)
            conn.rollback()
        with owner_conn(settings) as conn:
            with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
                conn.execute(stmt, (inc.id,) if "%s" in stmt.as_string(conn) else None)
    assert store.events(inc.id) == before


def test_reports_are_versioned_and_an_old_state_check_is_upgraded(
    store: IncidentStore, pool: ConnectionPool, settings: Settings
) -> None:
    inc, _ = store.open_or_join("reports-cluster", {"source": "test"}, "test")
    assert store.latest_report(inc.id) is None
    assert (store.save_report(inc.id, "# v1"), store.save_report(inc.id, "# v2")) == (1, 2)
    assert store.latest_report(inc.id) == "# v2"
    # A table created before `monitoring` existed (and before migrations): the baseline replaces its CHECK.
    check = sql.Identifier(f"{PREFIX}s_state_check")
    with owner_conn(settings) as conn:  # as an old install's owner did
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} DROP CONSTRAINT {}, "
                "ADD CONSTRAINT {} CHECK (state IN ('detected', 'resolved')) NOT VALID"
            ).format(sql.Identifier(f"{PREFIX}s"), check, check),
            prepare=False,
        )
        drop_version_tables(conn, NAMES)
    migrated_names(settings, NAMES)
    lease = store.acquire_lease(inc.id, "t", 60)
    assert lease is not None
    for old, new in (("detected", "assessing"), ("assessing", "verifying"), ("verifying", "monitoring")):
        store.transition(inc.id, IncidentState(old), IncidentState(new), lease, {})
    assert store.get(inc.id).state == IncidentState.MONITORING
    store.transition(inc.id, IncidentState.MONITORING, IncidentState.RESOLVED, lease, {})


# --- the lease's heartbeat (issue 16) ------------------------------------------------------------------------------


def test_a_live_holders_heartbeat_keeps_its_lease_past_the_ttl_and_a_stopped_one_loses_it(
    store: IncidentStore, pool: ConnectionPool, cluster_id: str
) -> None:
    """Working longer than the TTL never lets a rival in while the heartbeat beats; once it stops (the holder's
    process died) the lease is free a TTL later, and the old holder finds out at its next beat."""
    import time

    from cassandra_recovery.incident.lease_keeper import LeaseKeeper

    inc = _opened(store, cluster_id)
    lease = _lease(store, inc.id, ttl_s=3.0)
    keeper = LeaseKeeper(lease, store.renew_lease, every_s=0.5, ttl_s=3.0).start()
    try:
        time.sleep(4.5)  # longer than the TTL
        assert store.acquire_lease(inc.id, "flow-b", 3.0) is None
        assert keeper.beats >= 4 and keeper.lost is None
    finally:
        keeper.stop()
    _expire_lease(store, pool, inc.id)  # a TTL later, nobody renewed it
    rival = store.acquire_lease(inc.id, "flow-b", 60.0)
    assert rival is not None and rival.token > lease.token
    keeper.beat(time.monotonic())  # the old holder wakes up (SIGCONT): its next beat fences it
    with pytest.raises(LeaseLost, match=f"has token {lease.token}, current token {rival.token} held by flow-b"):
        keeper.raise_if_lost()
    assert store.get(inc.id).lease_holder == "flow-b"  # the rival's lease is untouched
