"""The recovery engine end to end on the real lab, through the served incident deployment (Prefect on PostgreSQL).

Each scenario ends with `compare` equal and no acknowledged write lost against PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from cassandra_recovery.clients.jmx import JmxMetrics
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.degraded.compare import Comparer
from cassandra_recovery.degraded.policy import Mode, PolicyStore
from cassandra_recovery.degraded.workload import WorkloadSpec, run_workload
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.layout import node_address
from cassandra_recovery.logic.murmur3 import MIN_TOKEN
from cassandra_recovery.mitigation.pauses import RepairPauses
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
from cassandra_recovery.settings import ClusterConfig, Settings
from cassandra_recovery.verification.replica import ReplicaReader
from cassandra_recovery.verification.tables import orders_spec
from cassandra_recovery.wiring import ServiceParts, service_parts
from tests import faults as F
from tests.cluster import slack_seen
from tests.cluster.conftest import restore
from tests.cluster.incident_env import (
    capture_timeline,
    close_open_incident,
    log_file,
    prefect_api,
    timeline_tail,
    wait_for,
)
from tests.cluster.previous_version import Served, previous_version
from tests.fakes.slack_server import FakeSlackServer
from tests.migrated import migrated

pytestmark = pytest.mark.area("incident")

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = {
    "KEYSPACE": "shop_recovery",
    "ORDERS_TABLE": "orders_rec",
    "OUTBOX_TABLE": "outbox_rec",
    "POLICY_TABLE": "policy_rec",
}


LEVELS = {"lab-observe": "observe", "lab-propose": "propose"}  # the lab registered again at these levels


@pytest.fixture(scope="module")
def env(prefect_server: dict[str, str], cluster: ClusterConfig) -> Iterator[dict[str, str]]:
    """This module's own domain tables, a fake Slack and the lab registered again at lower automation levels, in
    the environment `serve` and the flows inherit."""
    with FakeSlackServer(channels={"C0LAB": "cassandra-lab"}) as slack, pytest.MonkeyPatch.context() as mp:
        for k, v in DOMAIN.items():
            mp.setenv(f"CASSANDRA_RECOVERY_DOMAIN__{k}", v)
        levels = {cid: cluster.model_copy(update={"id": cid, "automation": lv}) for cid, lv in LEVELS.items()}
        mp.setenv("CASSANDRA_RECOVERY_CLUSTERS", json.dumps({k: c.model_dump(mode="json") for k, c in levels.items()}))
        mp.setenv("CASSANDRA_RECOVERY_SLACK_TOKEN", slack.token)
        mp.setenv("CASSANDRA_RECOVERY_SLACK_BASE_URL", slack.url)
        for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            mp.delenv(proxy, raising=False)
        SLACK.append(slack)
        slack_seen.watch(slack)
        yield {**os.environ, **prefect_server, "PYTHONDONTWRITEBYTECODE": "1"}
        slack_seen.closed(slack)
        SLACK.remove(slack)


SLACK: list[FakeSlackServer] = []  # the module's fake Slack, for assertions


class _Serve:
    """The module's `serve` process; the upgrade test swaps in the previous version's for part of its run."""

    current: Served | None = None

    @classmethod
    def swap(cls, tree: Path, env: dict[str, str], log: Path) -> None:
        cls.stop()
        cls.current = Served(tree, env, log)

    @classmethod
    def stop(cls) -> None:
        if cls.current is not None:
            cls.current.stop()
            cls.current = None


@pytest.fixture(scope="module")
def served(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`cassandra-recovery serve`: the deployments and the crash resumer, as in production."""
    (log_file("serve")).write_text("")
    _Serve.swap(ROOT, env, log_file("serve"))
    try:
        wait_for(lambda: _deployment_exists(env), 90, "the incident deployment to be served")
        yield env
    finally:
        _Serve.stop()


@pytest.fixture
def parts(served: dict[str, str]) -> Iterator[ServiceParts]:
    settings = Settings()  # the module's domain, from the environment
    p = service_parts(migrated(settings))
    p.empty()
    yield p
    p.close()


@pytest.fixture(autouse=True)
def _no_run_left_acting(request: pytest.FixtureRequest, served: dict[str, str]) -> Iterator[None]:
    """After a failed test, its incident runs are stopped and their processes killed, so the next test does not
    find the incident still leased (one failure, not a cascade); the failure itself stands."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    from deployments.orphans import INCIDENT_FLOW
    from deployments.run_queries import runs_in_state

    with prefect_api(served), get_client(sync_client=True) as client:
        for fr in runs_in_state(client, ["SCHEDULED", "PENDING", "RUNNING", "PAUSED"], INCIDENT_FLOW):
            client.set_flow_run_state(fr.id, Cancelled(message="stopped after a failed test"), force=True)
            _signal_all(_flow_run_pids(fr.id), signal.SIGKILL)
            print(f"stopped incident run {fr.id} ({fr.state_name}) left by the failed test")
    time.sleep(Settings().runbook.lease_ttl_s + 1)  # the killed holders' leases lapse


# helpers ---------------------------------------------------------------------------------------
def _deployment_exists(env: dict[str, str]) -> bool:
    from prefect.client.orchestration import get_client

    from deployments.names import INCIDENT_DEPLOYMENT

    with prefect_api(env), get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(INCIDENT_DEPLOYMENT)
            return True
        except Exception:
            return False


def _start_incident(env: dict[str, str], cluster_id: str, **params: Any) -> Any:
    from prefect.deployments import run_deployment

    from deployments.names import INCIDENT_DEPLOYMENT

    with prefect_api(env):
        trigger = {"source": "test", "nodes": ["node3"]}
        parameters = {"cluster_id": cluster_id, "trigger": trigger, **params}
        return run_deployment(INCIDENT_DEPLOYMENT, parameters=parameters, timeout=0)


def _flow_run_state(env: dict[str, str], run_id: Any) -> str:
    from prefect.client.orchestration import get_client

    with prefect_api(env), get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
        return state.type.value if state else "NONE"


def _completed(env: dict[str, str], run_id: Any) -> bool:
    """Whether the run COMPLETED; a run FAILED or CANCELLED will not, and fails the wait at once with its message."""
    from prefect.client.orchestration import get_client

    with prefect_api(env), get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    if state is not None and state.type.value in ("FAILED", "CANCELLED"):
        raise AssertionError(f"flow run {run_id} ended {state.type.value}: {state.message}")
    return state is not None and state.type.value == "COMPLETED"


def _incident_in(store: IncidentStore, cluster_id: str, state: str) -> str | None:
    inc = store.open_for(cluster_id)
    return inc.id if inc is not None and inc.state == state else None


def _flow_run_pids(run_id: Any) -> list[int]:
    """The processes running this flow run (by the env var Prefect's runner sets), with their children."""
    mine: list[int] = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if f"PREFECT__FLOW_RUN_ID={run_id}".encode() in (d / "environ").read_bytes().split(b"\0"):
                mine.append(int(d.name))
        except OSError:
            continue
    return mine


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(pids: list[int]) -> bool:
    return any(Path(f"/proc/{p}").exists() and "zombie" not in _status(p) for p in pids)


def _status(pid: int) -> str:
    try:
        return next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:"))
    except (OSError, StopIteration):
        return "gone zombie"


class Background(threading.Thread):
    def __init__(self, fn: Callable[[], Any]):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as e:  # re-raised by the test
            self.error = e


def _converged(p: ServiceParts, cluster: ClusterConfig) -> dict[str, Any]:
    """compare (LOCAL_QUORUM) equal, and node3's own copy (RF 3: the whole ring) counted by a read the query
    trace proves node3 served (a CL ONE count may be served by another replica: the dynamic snitch)."""
    res = Comparer(p.pg.pool, p.cql, p.pg.store.cfg).run(chunks=16).as_dict()
    return {**res, "node3_rows": _own_count(p, cluster.node("node3").address, [n.address for n in cluster.nodes])}


def _own_count(p: ServiceParts, replica: str, replicas: list[str]) -> int:
    """Rows in the replica's own copy of the whole ring (RF 3 on 3 nodes), proven by the read's trace."""
    return ReplicaReader(p.cql, orders_spec(p.pg.store.cfg)).summary(MIN_TOKEN, MIN_TOKEN, replica, replicas).count


def _assert_postmortem(env: dict[str, str], store: IncidentStore, incident_id: str) -> None:
    """Every phase with its time in the stored report, the same report as a Prefect artifact, the progress
    artifact at 100 %, and the summary in the incident's Slack thread."""
    import re

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tasks.postmortem import artifact_key

    # The closing run writes the report right after the transition to resolved: wait for that version.
    closed = re.compile(r"^\| closed \| \d{4}-", re.MULTILINE)
    report = wait_for(
        lambda: (r := store.latest_report(incident_id)) and closed.search(r) and r, 60, "the report of the close"
    )
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    for phase in ("detected", "confirmed", "mitigated", "healed", "hints drained", "verified", "closed"):
        assert re.search(r"\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \|", rows[phase]), rows[phase]
    assert "did not happen" in rows["repaired"]  # hints sufficed
    assert "## Root cause" in report and "## Action items" in report and "follow_up" in report
    with prefect_api(env), get_client(sync_client=True) as client:

        def artifacts(key: str) -> list[Any]:
            flt = ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(key, incident_id)]))
            return list(client.read_artifacts(artifact_filter=flt))

        reports = artifacts("postmortem")
        assert reports and {a.type for a in reports} == {"markdown"}, reports
        # the progress artifact moves to 100 % just after the report is written
        done = wait_for(
            lambda: (a := artifacts("progress")) and max(float(x.data) for x in a) == 100.0 and a, 60, "progress 100 %"
        )
        assert {a.type for a in done} == {"progress"}, done
    texts = [m.get("text", "") for m in SLACK[0].messages("C0LAB")]
    assert any(t.startswith(f"*Post-mortem: incident {incident_id}") for t in texts), texts[-3:]


# scenarios -------------------------------------------------------------------------------------
@pytest.mark.fault(F.NODE_FROZEN, F.LEASE_HOLDER_HUNG)
def test_frozen_node_under_write_load_hints_drain_and_a_frozen_lease_holder_is_fenced(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Issue scenarios 1 and 5: node3 frozen ~30 s under writes; while it is away the incident run itself is
    SIGSTOPped and retried; the retry takes the lease back, drains hints (no repair), restores the policy; the
    thawed old holder's late writes are refused by the fencing token."""
    close_open_incident(store, cluster.id)
    node3 = lab.node("node3")
    run_workload(parts.service, WorkloadSpec(rate=200, operations=300, keys=300, read_ratio=0.0), relay=parts.relay)
    jmx = JmxMetrics(cluster)
    hints_before = sum(jmx.hint_counters(c).created_for(node3.address) for c in ("node1", "node2"))

    lab.freeze("node3")
    frozen_at = time.monotonic()
    spec = WorkloadSpec(rate=30, duration_s=25, keys=300, read_ratio=0.5)
    load = Background(lambda: run_workload(parts.service, spec, relay=parts.relay))
    load.start()
    lab.wait_seen(node3, up=False)
    run = _start_incident(served, cluster.id, follow_up_s=8)
    incident_id = wait_for(lambda: _incident_in(store, cluster.id, "recovering"), 300, "the incident to be recovering")

    policy = PolicyStore(parts.pg.pool, parts.pg.store.cfg).get(cluster.id)  # a fresh store: no cached policy
    assert (policy.mode, policy.incident_id, policy.read_consistency) == (Mode.DEGRADED, incident_id, "ONE")
    pause = RepairPauses(parts.pg.pool).get(cluster.id)
    assert pause is not None and pause.incident_id == incident_id

    # The lease holder hangs (SIGSTOP); the same flow run is retried by another process.
    holder = wait_for(lambda: _flow_run_pids(run.id), 60, "the flow run's process")
    _signal_all(holder, signal.SIGSTOP)
    old_token = store.get(incident_id).fencing_token
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    with prefect_api(served), get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Scheduled(message="lease holder hung: retried (test)"), force=True)
    retry = subprocess.Popen(
        [sys.executable, "-m", "prefect", "flow-run", "execute", str(run.id)],
        env=served,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: store.get(incident_id).fencing_token > old_token, 120, "the retried run to take the lease")
        load.join(timeout=120)
        assert load.error is None, load.error
        assert load.result.write_errors == 0, load.result.as_dict()  # type: ignore[attr-defined]
        time.sleep(max(0.0, 30 - (time.monotonic() - frozen_at)))  # about 30 s frozen in all
        hints_during = sum(jmx.hint_counters(c).created_for(node3.address) for c in ("node1", "node2"))
        lab.thaw("node3")
        _, err = retry.communicate(timeout=480)
        assert retry.returncode == 0, err[-3000:]
    finally:
        if retry.poll() is None:
            retry.kill()
        _signal_all(holder, signal.SIGCONT)
    assert _flow_run_state(served, run.id) == "COMPLETED"

    # The old holder wakes up, goes on, and is refused at its first fenced write.
    wait_for(lambda: not _alive(holder), 240, "the thawed old holder to stop", every_s=2)
    events = store.events(incident_id)
    takeover = next(
        e.seq for e in events if e.kind == "lease_acquired" and e.fencing_token and e.fencing_token > old_token
    )
    late = [e for e in events if e.seq > takeover and e.fencing_token == old_token]
    assert late == [], [(e.kind, e.fencing_token) for e in late]
    served_log = (log_file("serve")).read_text(errors="replace")
    assert f"has token {old_token}, current token" in served_log  # the old holder's renewal was refused (LeaseLost)
    assert "superseded by a newer attempt" in served_log  # and it stopped quietly...
    time.sleep(5)  # give the runner that started the old process time to report anything it would
    with prefect_api(served), get_client(sync_client=True) as client:
        history = [st.type.value for st in client.read_flow_run_states(run.id)]
    done_at = history.index("COMPLETED")
    assert history[done_at:] == ["COMPLETED"], history  # ...without overwriting the finished run's state
    # Verified, then monitored: the follow-up verification (8 s later here, a day by default) closes it.
    wait_for(lambda: store.get(incident_id).state.value == "resolved", 240, "the follow-up verification to close it")
    events = store.events(incident_id)
    kinds = [e.kind for e in events]
    assert {"mitigated", "recovery_finished", "policy_restored", "follow_up_scheduled"} <= set(kinds)
    passes = [(e.data["pass"], e.data["verdict"]) for e in events if e.kind == "verified"]
    assert passes == [("initial", "converged"), ("follow_up", "converged")], passes
    to_states = [e.data["to"] for e in events if e.kind == "transition"]
    assert to_states[-2:] == ["monitoring", "resolved"], to_states
    _assert_postmortem(served, store, incident_id)
    finished = next(e for e in events if e.kind == "recovery_finished").data
    assert finished["hints"]["state"] == "drained" and "repair" not in finished, finished
    assert hints_during > hints_before  # the writes during the freeze went through hints

    assert PolicyStore(parts.pg.pool, parts.pg.store.cfg).get(cluster.id).mode is Mode.NORMAL
    assert RepairPauses(parts.pg.pool).get(cluster.id) is None
    conv = _converged(parts, cluster)
    rows = conv["rows_compared"]
    assert conv["equal"] and rows["postgres"] == rows["cassandra"] == conv["node3_rows"] > 0, conv
    texts = [m.get("text", "") for m in SLACK[0].messages("C0LAB") if m.get("thread_ts") not in (None, m["ts"])]
    assert any(t.startswith("Mitigation:") for t in texts), texts
    assert any(t.startswith("Recovered and verified:") and "follow-up verification at" in t for t in texts), texts
    print("scenario 1+5:", {"hints": hints_during - hints_before, "rows": rows, "drain": finished["hints"]})


@contextmanager
def _slack_failing() -> Iterator[None]:
    """Every Slack call fails until the block ends (500, 429, 500, then a hang past the client's 5 s timeout, in
    turn): the incident must go on without it."""
    slack = SLACK[0]
    for _ in range(250):
        slack.fail_next(1, 500)
        slack.rate_limit_next(1, retry_after=1)
        slack.fail_next(1, 503)
        slack.hang_next(1, seconds=6.0)
    try:
        yield
    finally:
        with slack._state.lock:
            slack._state.faults.clear()


@contextmanager
def _frozen_under_writes(lab: Lab, parts: ServiceParts, nodes: list[str], seconds: float = 4) -> Iterator[None]:
    """`nodes` frozen by the fault injector (thawed on exit, or by its guardian), seen down by their peers, and
    the service writing meanwhile without an error (what QUORUM cannot take waits in PostgreSQL's queue)."""
    from contextlib import ExitStack

    from cassandra_recovery.chaos.injector import FaultInjector

    inj = FaultInjector()
    with ExitStack() as faults:
        for n in nodes:
            faults.enter_context(inj.freeze(n, deadline_s=600))
        for n in nodes:
            lab.wait_seen(lab.node(n), up=False)
        spec = WorkloadSpec(rate=30, duration_s=seconds, keys=200, read_ratio=0.2)
        written = run_workload(parts.service, spec, relay=parts.relay)
        assert written.writes > 0 and written.write_errors == 0, written.as_dict()
        yield


def _start_for(env: dict[str, str], cluster_id: str, nodes: list[str], **params: Any) -> Any:
    from prefect.deployments import run_deployment

    from deployments.names import INCIDENT_DEPLOYMENT

    with prefect_api(env):
        parameters = {"cluster_id": cluster_id, "trigger": {"source": "test", "nodes": nodes}, **params}
        return run_deployment(INCIDENT_DEPLOYMENT, parameters=parameters, timeout=0)


def _ends_resolved_and_converged(
    served: dict[str, str], run: Any, store: IncidentStore, parts: ServiceParts, cluster: ClusterConfig, node: str
) -> dict[str, Any]:
    """The chaos matrix's common end: the run completed, the incident resolved on a converged verification of
    every replica, the queue drained, no row lost against PostgreSQL (compare equal, and `node`'s own copy
    counted by a read its trace proves it served), one run acting at a time on the fenced log."""
    wait_for(lambda: _completed(served, run.id), 420, "the incident run to finish", 2)
    incident_id = next(e.incident_id for e in _events_of_run(store, cluster.id, str(run.id)))
    inc = store.get(incident_id)
    assert inc.state.value == "resolved", (inc.state, [e.kind for e in store.events(incident_id)][-15:])
    events = store.events(incident_id)
    assert [e.data["verdict"] for e in events if e.kind == "verified"][-1] == "converged"
    assert parts.pg.outbox.stats().queued == 0
    res = Comparer(parts.pg.pool, parts.cql, parts.pg.store.cfg).run(chunks=16).as_dict()
    addresses = [n.address for n in cluster.nodes]
    own = _own_count(parts, cluster.node(node).address, addresses)
    assert res["equal"] and res["rows_compared"]["postgres"] == res["rows_compared"]["cassandra"] == own > 0, res
    return {"incident_id": incident_id, "events": events, "acted": _one_run_acting_at_a_time(incident_id)}


def _events_of_run(store: IncidentStore, cluster_id: str, run_id: str) -> list[Any]:
    """The events this run wrote on its cluster's newest incident (open or just resolved)."""
    from cassandra_recovery.clients.postgres import fetch_one

    q = sql.SQL("SELECT id FROM {} WHERE cluster_id = %s ORDER BY opened_at DESC LIMIT 1")
    with store.pool.connection() as conn:
        row = fetch_one(conn.execute(q.format(sql.Identifier(store.incidents_table)), (cluster_id,)))
    assert row is not None
    found = [e for e in store.events(str(row["id"])) if e.actor == f"flow-run/{run_id}"]
    assert found, f"flow run {run_id} wrote nothing on the newest incident of {cluster_id}"
    return found


@pytest.mark.fault(F.NODE_FROZEN, F.SEED_FROZEN, F.POSTGRES_DOWN, F.PREFECT_DOWN, F.SLACK_FAILING, F.SUSTAINED_WRITES)
def test_chaos_seed_node1_frozen_under_writes_postgres_restarted_in_assessment_and_recovery_slack_failing(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Chaos matrix: node1 (the first contact point and a seed) frozen while the service writes; PostgreSQL (and
    with it Prefect's API, same cluster) restarted while the run assesses, and again while it recovers; Slack
    failing throughout. The incident ends resolved on a converged per-replica verification with nothing lost."""
    from datetime import UTC, datetime

    from cassandra_recovery.chaos.injector import FaultInjector

    close_open_incident(store, cluster.id)
    inj = FaultInjector()
    t0 = time.monotonic()
    with _slack_failing():
        with _frozen_under_writes(lab, parts, ["node1"]):
            run = _start_for(served, cluster.id, ["node1"], follow_up_s=0)
            wait_for(lambda: _incident_in(store, cluster.id, "assessing"), 300, "the run to assess", 0.1)
            down_at = datetime.now(UTC)
            with inj.postgres_down(deadline_s=120):
                time.sleep(5)  # the assessment's reads and writes meet PostgreSQL and Prefect's API away
            wait_for(lambda: _incident_in(store, cluster.id, "recovering"), 300, "the incident to recover")
            with inj.postgres_down(deadline_s=120):
                time.sleep(5)  # again while the run waits for node1
        end = _ends_resolved_and_converged(served, run, store, parts, cluster, "node1")
    kinds = [e.kind for e in end["events"]]
    assert "slack_not_posted" in kinds, kinds  # Slack failed and the incident went on
    moves = [(e.at, e.data["to"]) for e in end["events"] if e.kind == "transition"]
    assessing_since = max(at for at, to in moves if to == "assessing" and at <= down_at)
    left_at = min(at for at, to in moves if at > assessing_since)
    assert left_at > down_at, (down_at, moves)  # PostgreSQL went down while the run was assessing
    assert any(e.kind == "plan_set" and e.at > down_at for e in end["events"])  # and the assessment completed
    print("chaos node1+postgres x2+slack:", {"seconds": round(time.monotonic() - t0, 1), "acted": end["acted"]})


@pytest.mark.fault(F.NODE_FROZEN, F.FLOW_RUN_FAILED, F.ALERT_FLOOD, F.SLACK_FAILING)
def test_chaos_a_run_marked_failed_mid_recovery_then_the_alert_sent_again_leaves_one_run_acting(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Chaos matrix: while the incident recovers, its run is marked FAILED from outside (as from the UI) and the
    alert is sent again (a new run of the deployment). The process still holding the lease finishes the incident;
    the new run joins it and does not act; the failed-run resumer leaves a run whose lease is live alone. Ends
    resolved on a converged verification, nothing lost, one run acting at a time."""
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    close_open_incident(store, cluster.id)
    t0 = time.monotonic()
    with _slack_failing():
        with _frozen_under_writes(lab, parts, ["node3"], seconds=3):
            run = _start_for(served, cluster.id, ["node3"], follow_up_s=0)
            incident_id = wait_for(lambda: _incident_in(store, cluster.id, "recovering"), 300, "the run to recover")
            with prefect_api(served), get_client(sync_client=True) as client:
                client.set_flow_run_state(run.id, Failed(message="marked failed by an operator (chaos)"), force=True)
            again = _start_for(served, cluster.id, ["node3"], follow_up_s=0)  # the alert, sent again
            wait_for(lambda: _flow_run_state(served, again.id) in ("COMPLETED", "FAILED", "CRASHED"), 180,
                     "the re-sent alert's run to end", 2)  # fmt: skip
        wait_for(lambda: store.get(incident_id).state.value in ("resolved", "escalated"), 420, "the incident to end", 2)
    inc = store.get(incident_id)
    events = store.events(incident_id)
    assert inc.state.value == "resolved", [(e.kind, e.actor) for e in events][-15:]
    assert [e.data["verdict"] for e in events if e.kind == "verified"][-1] == "converged"
    joined = [e for e in events if e.kind == "joined" and e.actor == f"flow-run/{again.id}"]
    assert joined, "the re-sent alert's run did not join the open incident"
    assert not [e for e in events if e.kind == "lease_acquired" and e.actor == f"flow-run/{again.id}"]
    assert parts.pg.outbox.stats().queued == 0
    res = Comparer(parts.pg.pool, parts.cql, parts.pg.store.cfg).run(chunks=16).as_dict()
    own = _own_count(parts, cluster.node("node3").address, [n.address for n in cluster.nodes])
    assert res["equal"] and res["rows_compared"]["postgres"] == own > 0, res
    acted = _one_run_acting_at_a_time(incident_id)
    print("chaos run failed + alert again:", {"seconds": round(time.monotonic() - t0, 1), "acted": acted})


@pytest.mark.fault(F.NODE_FLAPPING, F.SLACK_FAILING)
def test_chaos_a_node_flapping_through_the_incident_is_verified_once_it_settles(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Chaos matrix: node3 frozen and thawed in turn (4 s down, 4 s up) under writes while the incident runs,
    for about 40 s, then left up. The incident does not close on a verification made while node3 was away:
    it ends resolved on a converged verification, nothing lost, one run acting at a time."""
    from cassandra_recovery.chaos.injector import FaultInjector

    close_open_incident(store, cluster.id)
    inj = FaultInjector()
    t0 = time.monotonic()
    with _slack_failing():
        with inj.flap("node3", down_s=4.0, up_s=4.0, deadline_s=600):
            time.sleep(1)
            spec = WorkloadSpec(rate=30, duration_s=8, keys=200, read_ratio=0.2)
            written = run_workload(parts.service, spec, relay=parts.relay)
            assert written.writes > 0 and written.write_errors == 0, written.as_dict()
            run = _start_for(served, cluster.id, ["node3"], follow_up_s=0)
            written = run_workload(parts.service, spec, relay=parts.relay)
            assert written.writes > 0 and written.write_errors == 0, written.as_dict()
            time.sleep(20)
        lab.thaw("node3")  # settled: up for good (the flap's undo left it running; wait until peers see it)
        end = _ends_resolved_and_converged(served, run, store, parts, cluster, "node3")
    print("chaos flapping:", {"seconds": round(time.monotonic() - t0, 1), "acted": end["acted"]})


@pytest.mark.second_lab  # bin/test runs it on the second lab: it balances the cluster halves
@pytest.mark.fault(F.NODE_FROZEN, F.EVERY_REPLICA_BUT_ONE_DOWN, F.PREFECT_DOWN, F.FLOW_RUN_CRASHED, F.SLACK_FAILING)
def test_chaos_two_of_three_down_no_quorum_prefect_restarted_mid_incident_slack_failing(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Chaos matrix: node2 and node3 frozen (RF 3: no QUORUM; the service queues its writes in PostgreSQL); the
    Prefect server restarted while the incident waits for them, and the live run then marked Crashed as after an
    outage longer than the zombie window; Slack failing throughout. Ends resolved on a converged per-replica
    verification, the queue delivered, nothing lost, one run acting at a time."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    from cassandra_recovery.chaos.injector import FaultInjector

    close_open_incident(store, cluster.id)
    inj = FaultInjector()
    t0 = time.monotonic()
    with _slack_failing():
        with _frozen_under_writes(lab, parts, ["node2", "node3"]):
            assert parts.pg.outbox.stats().queued > 0  # no quorum: acknowledged writes wait in PostgreSQL
            run = _start_for(served, cluster.id, ["node2", "node3"], follow_up_s=0)
            wait_for(lambda: _incident_in(store, cluster.id, "recovering"), 300, "the incident to recover")
            with inj.prefect_down(deadline_s=180):
                time.sleep(5)  # the run and `serve` lose the Prefect API while the nodes are away
            # An outage longer than the zombie window ends as Prefect's zombie automation ends it: the live run
            # marked Crashed (its action, without waiting out `prefect.zombie_after_s`), and the crash resumer
            # schedules it again. This `serve` never starts a second process of a run it is running, so the live
            # process carries on under its lease; another serve would take the lease under a new token and fence
            # the old process out (the frozen-host test shows that).
            with prefect_api(served), get_client(sync_client=True) as client:
                why = "no heartbeat for 120s: the process running this flow run is gone (outage, chaos)"
                client.set_flow_run_state(run.id, Crashed(message=why), force=True)
        end = _ends_resolved_and_converged(served, run, store, parts, cluster, "node3")
    with prefect_api(served), get_client(sync_client=True) as client:
        history = [(s.type.value, s.message or "") for s in client.read_flow_run_states(run.id)]
    assert any("resumed after crash" in m for _, m in history), history
    assert history[-1][0] == "COMPLETED" and "CRASHED" in [t for t, _ in history], history
    tokens = {e.fencing_token for e in end["events"] if e.actor == f"flow-run/{run.id}" and e.fencing_token}
    assert len(tokens) == 1, tokens  # one process acted throughout: no second one beside the live run
    print("chaos no-quorum+prefect+crash+slack:", {"seconds": round(time.monotonic() - t0, 1), "acted": end["acted"]})


@pytest.mark.second_lab  # bin/test runs it on the second lab: it balances the cluster halves
@pytest.mark.fault(F.NODE_FROZEN, F.NODE_BACK_BEFORE_ASSESSMENT)
def test_a_node_back_before_assessment_still_gets_hint_replay_and_verification(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """CI found it: an alert-started run that began after a short outage saw nothing down and resolved the
    incident unverified. The node its trigger reported is owed hint replay and verification all the same."""
    from flows.incident import incident_response
    from tests.cluster.incident_env import run_flow

    close_open_incident(store, cluster.id)
    node3 = lab.node("node3")
    run_workload(parts.service, WorkloadSpec(rate=200, operations=200, keys=200, read_ratio=0.0), relay=parts.relay)
    jmx = JmxMetrics(cluster)
    hints_before = sum(jmx.hint_counters(c).created_for(node3.address) for c in ("node1", "node2"))
    lab.freeze("node3")
    try:
        lab.wait_seen(node3, up=False)
        spec = WorkloadSpec(rate=30, duration_s=8, keys=200, read_ratio=0.0)
        written = run_workload(parts.service, spec, relay=parts.relay)
        hints_during = sum(jmx.hint_counters(c).created_for(node3.address) for c in ("node1", "node2"))
    finally:
        lab.thaw("node3")  # waits until its peers see it UN: the run below starts after the outage
    assert written.write_errors == 0 and hints_during > hints_before, written.as_dict()

    trigger = {"source": "test", "nodes": ["node3"]}
    result = run_flow(incident_response, served, cluster_id=cluster.id, trigger=trigger, follow_up_s=0)
    plan = result["plan"]
    assert (plan["action"], plan["targets"]) == ("wait_for_hints", [node3.address]), plan["reasons"]
    assert any("back before assessment" in r for r in plan["reasons"]), plan["reasons"]
    assert result["state"] == "resolved", result
    events = store.events(result["incident_id"])
    assert [e.data["verdict"] for e in events if e.kind == "verified"] == ["converged"]
    finished = next(e for e in events if e.kind == "recovery_finished").data
    assert finished["hints"]["state"] == "drained", finished
    conv = _converged(parts, cluster)
    rows = conv["rows_compared"]
    assert conv["equal"] and rows["postgres"] == rows["cassandra"] == conv["node3_rows"] > 0, conv


def _monitored_incident(store: IncidentStore, cluster_id: str) -> str:
    """An incident recovered and verified, waiting for its follow-up verification (state `monitoring`)."""
    from cassandra_recovery.logic.incident_states import IncidentState as S

    close_open_incident(store, cluster_id)
    inc, _ = store.open_or_join(cluster_id, {"source": "test", "nodes": []}, "pytest")
    lease = store.acquire_lease(inc.id, "pytest", 30, run_key=f"pytest-{time.time()}")
    assert lease is not None
    for old, new in ((S.DETECTED, S.ASSESSING), (S.ASSESSING, S.VERIFYING), (S.VERIFYING, S.MONITORING)):
        store.transition(inc.id, old, new, lease, {"reason": "test: a verified incident awaiting its follow-up"})
    store.release_lease(lease)
    return inc.id


def _outage_under_writes(lab: Lab, parts: ServiceParts, names: list[str], seconds: float = 3) -> None:
    """`names` frozen while the service writes (queued in PostgreSQL when Cassandra cannot take them), then
    thawed: when this returns the outage is over and every node is seen up."""
    for n in names:
        lab.freeze(n)
    try:
        for n in names:
            lab.wait_seen(lab.node(n), up=False)
        spec = WorkloadSpec(rate=30, duration_s=seconds, keys=200, read_ratio=0.0)
        written = run_workload(parts.service, spec, relay=parts.relay)
        assert written.writes > 0 and written.write_errors == 0, written.as_dict()
    finally:
        for n in names:
            lab.thaw(n)


@pytest.mark.second_lab  # bin/test runs it on the second lab: it balances the cluster halves
@pytest.mark.fault(F.NODE_FROZEN, F.SERVE_HOST_DIED, F.LEASE_EXPIRED)
def test_the_host_running_an_incident_dies_mid_recovery_and_another_serve_takes_the_incident_over(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Issue 16: a dead host is `serve` and every process of its flow runs gone at once; the run stays RUNNING in
    Prefect. Its lease stops being renewed, lapses a TTL later, and the watchdog in the next `serve` marks the run
    crashed; the crash resumer runs it again under a new fencing token and it finishes the recovery."""
    from cassandra_recovery.chaos.injector import FaultInjector

    close_open_incident(store, cluster.id)
    with _frozen_under_writes(lab, parts, ["node3"], seconds=3):
        run = _start_incident(served, cluster.id, follow_up_s=0)
        incident_id = wait_for(lambda: _incident_in(store, cluster.id, "recovering"), 300, "the incident to recover")
        old_token = store.get(incident_id).fencing_token
        assert _Serve.current is not None
        dead = [_Serve.current.proc.pid, *wait_for(lambda: _flow_run_pids(run.id), 60, "the flow run's processes")]
        FaultInjector().kill_processes(dead, "the serve host")  # serve and its flow run, children included
        wait_for(lambda: not _alive(dead), 30, "the dead host's processes to be gone", every_s=0.5)
        died_at = time.monotonic()
        assert _flow_run_state(served, run.id) == "RUNNING"  # Prefect cannot tell yet
        _Serve.swap(ROOT, served, log_file("serve"))  # another host's serve
        wait_for(
            lambda: store.get(incident_id).fencing_token > old_token,
            180,
            "another serve to take the run over",
            explain=lambda: timeline_tail(store, incident_id),
        )
        took_over_s = time.monotonic() - died_at
    wait_for(
        lambda: _completed(served, run.id),
        300,
        "the run taken over to finish",
        2,
        explain=lambda: timeline_tail(store, incident_id),
    )
    inc = store.get(incident_id)
    assert inc.state.value == "resolved", inc.state
    events = store.events(incident_id)
    (gone,) = [e.data for e in events if e.kind == "holder_gone"]
    assert gone["flow_run_id"] == str(run.id) and "lease lapsed" in gone["reason"]
    takeover = next(e.seq for e in events if e.kind == "lease_acquired" and (e.fencing_token or 0) > old_token)
    assert [e.kind for e in events if e.seq > takeover and e.fencing_token == old_token] == []
    assert [e.data["verdict"] for e in events if e.kind == "verified"][-1] == "converged"
    assert parts.pg.outbox.stats().queued == 0
    conv = _converged(parts, cluster)
    assert conv["equal"] and conv["rows_compared"]["postgres"] == conv["node3_rows"] > 0, conv
    acted = _one_run_acting_at_a_time(incident_id)
    ttl = Settings().runbook.lease_ttl_s
    print("takeover after the host died:", {"seconds": round(took_over_s, 1), "lease_ttl_s": ttl, "acted": acted})


def _one_run_acting_at_a_time(incident_id: str) -> dict[str, int]:
    """The fenced log of the incident: no two runs' actions overlap, no repair session claimed by two runs.
    Returns how many actions each run took."""
    from cassandra_recovery.logic.fenced_log import overlapping_runs, sessions_started_by_two_runs
    from cassandra_recovery.storage.facade import process_storage

    intervals = [e.interval() for e in process_storage().side_effects.entries(incident_id)]
    assert intervals, "no action of the incident's runs on the fenced log"
    assert overlapping_runs(intervals) == [], intervals
    assert sessions_started_by_two_runs(intervals) == {}, intervals
    acted: dict[str, int] = {}
    for i in intervals:
        acted[i.holder] = acted.get(i.holder, 0) + 1
    return acted


@pytest.mark.second_lab  # bin/test runs it on the second lab: it balances the cluster halves
@pytest.mark.fault(F.NODE_FROZEN, F.SERVE_HOST_FROZEN, F.LEASE_HOLDER_HUNG, F.LEASE_EXPIRED)
def test_a_frozen_serve_host_is_taken_over_and_its_run_wakes_up_stale_and_changes_nothing(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Issue 16: `serve` and its flow run frozen (SIGSTOP) for longer than the lease's TTL: the next `serve` takes
    the incident over; then the frozen processes are thawed (SIGCONT). The old run wakes with a stale lease: its
    next write is refused, it acts no more, and the incident ends once, resolved and converged."""
    from cassandra_recovery.chaos.injector import FaultInjector

    close_open_incident(store, cluster.id)
    old_serve = None
    try:
        with _frozen_under_writes(lab, parts, ["node3"], seconds=3):
            run = _start_incident(served, cluster.id, follow_up_s=0)
            incident_id = wait_for(lambda: _incident_in(store, cluster.id, "recovering"), 300, "the run to recover")
            old_token = store.get(incident_id).fencing_token
            old_serve, _Serve.current = _Serve.current, None
            assert old_serve is not None
            host = [old_serve.proc.pid, *wait_for(lambda: _flow_run_pids(run.id), 60, "the flow run's processes")]
            with FaultInjector().freeze_processes(host, "the serve host", deadline_s=300):
                _Serve.swap(ROOT, served, log_file("serve"))  # another host's serve, beside the frozen one
                wait_for(lambda: store.get(incident_id).fencing_token > old_token, 180, "another serve to take over")
            # leaving the block wakes the old host (SIGCONT), its lease long taken over
        wait_for(
            lambda: _completed(served, run.id),
            300,
            "the run taken over to finish",
            2,
            explain=lambda: timeline_tail(store, incident_id),
        )
        inc = store.get(incident_id)
        assert inc.state.value == "resolved", inc.state
        events = store.events(incident_id)
        takeover = next(e.seq for e in events if e.kind == "lease_acquired" and (e.fencing_token or 0) > old_token)
        late = [e.kind for e in events if e.seq > takeover and e.fencing_token == old_token]
        assert late == [], late  # the woken run wrote nothing after the takeover
        assert [e.data["verdict"] for e in events if e.kind == "verified"][-1] == "converged"
        assert parts.pg.outbox.stats().queued == 0
        acted = _one_run_acting_at_a_time(incident_id)
        assert not any(f"(token {old_token})" in run_ for run_ in acted), acted
        conv = _converged(parts, cluster)
        assert conv["equal"] and conv["rows_compared"]["postgres"] == conv["node3_rows"] > 0, conv
        print("takeover of a frozen host:", {"acted": acted})
    finally:
        if old_serve is not None:
            old_serve.stop()


@pytest.mark.second_lab  # bin/test runs it on the second lab: it balances the cluster halves
@pytest.mark.fault(F.NODE_FROZEN, F.MONITORED_INCIDENT_RETRIGGERED, F.NODE_BACK_BEFORE_ASSESSMENT, F.NODE_FLAPPING)
def test_a_monitored_incident_retriggered_after_an_outage_drains_the_queue_watches_hints_and_verifies(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Issue 15: a run joining an incident in `monitoring` found nothing down and did nothing (`acting: false`),
    leaving the outage's queued writes undelivered and a replica diverged. A new trigger on a monitored incident
    re-assesses and verifies: (1) a manual run after two of three nodes were frozen under writes delivers every
    hint and the queue, then proves every replica; (2) a detector trigger naming a node that is back by now gets
    that node's hint replay watched and a verification; node2, reported down by the detector as that verification
    starts or runs (a flap), gets its own replay and a verification after it before the incident closes."""
    from flows.incident import incident_response
    from tests.cluster.incident_env import run_flow

    run_workload(parts.service, WorkloadSpec(rate=200, operations=200, keys=200, read_ratio=0.0), relay=parts.relay)
    incident_id = _monitored_incident(store, cluster.id)
    _outage_under_writes(lab, parts, ["node2", "node3"])
    assert parts.pg.outbox.stats().queued > 0  # QUORUM could not be met: the writes wait in the queue

    result = run_flow(incident_response, served, cluster_id=cluster.id, trigger={"source": "manual"}, follow_up_s=0)
    assert (result["incident_id"], result["acting"], result["state"]) == (incident_id, True, "resolved"), result
    events = store.events(incident_id)
    reopened = [e.data for e in events if e.kind == "transition" and e.data.get("from") == "monitoring"]
    assert reopened and reopened[0]["to"] == "assessing", [e.data for e in events if e.kind == "transition"]
    finished = [e.data for e in events if e.kind == "recovery_finished"][-1]
    assert finished["hints"]["state"] == "drained" and finished["queue"]["drained"], finished
    assert [e.data["verdict"] for e in events if e.kind == "verified"][-1] == "converged"
    assert parts.pg.outbox.stats().queued == 0
    conv = _converged(parts, cluster)
    rows = conv["rows_compared"]
    assert conv["equal"] and rows["postgres"] == rows["cassandra"] == conv["node3_rows"] > 0, conv

    incident_id = _monitored_incident(store, cluster.id)
    _outage_under_writes(lab, parts, ["node3"])
    trigger = {"source": "detector", "kind": "node_down", "nodes": ["node3"]}
    run = Background(lambda: run_flow(incident_response, served, cluster_id=cluster.id, trigger=trigger, follow_up_s=0))
    run.start()
    # While it verifies, the detector reports node2 down (a flap): node2 is owed a replay and a verification too.
    wait_for(lambda: _incident_in(store, cluster.id, "verifying"), 240, "the run to verify", 0.1)
    store.open_or_join(cluster.id, {"source": "detector", "kind": "node_down", "nodes": ["node2"]}, "detector")
    run.join(300)
    assert run.error is None and run.result is not None, run.error
    result = run.result
    assert (result["incident_id"], result["state"]) == (incident_id, "resolved"), result
    plan = result["plans"][0]  # the run's first plan; node2's flap is assessed by a plan of its own
    assert (plan["action"], plan["targets"]) == ("wait_for_hints", [lab.node("node3").address]), plan["reasons"]
    events = store.events(incident_id)
    drained = [(e.data["targets"], e.data["state"]) for e in events if e.kind == "hints_drained"]
    node2, node3 = lab.node("node2").address, lab.node("node3").address
    assert drained == [([node3], "drained"), ([node2], "drained")], drained
    # The runbook re-assesses for node2 alone: its trigger is newer than the plan, node3 was remedied already.
    again = [e.data["data"] for e in events if e.kind == "transition" and e.data["to"] == "assessing"][-1]
    assert again["decision_targets"] == [node2] and "newer than the plan: re-assess" in again["reason"], again
    # node2's replay is followed by a converged verification of its own (a second one when node2's trigger landed
    # while the first verification ran; the only one when it landed just before it started).
    replayed = next(i for i, e in enumerate(events) if e.kind == "hints_drained" and e.data["targets"] == [node2])
    verdicts = [(i > replayed, e.data["verdict"]) for i, e in enumerate(events) if e.kind == "verified"]
    assert verdicts in ([(False, "converged"), (True, "converged")], [(True, "converged")]), verdicts
    capture_timeline(store, incident_id, "monitored_detector_trigger_node_back_flap")
    conv = _converged(parts, cluster)
    rows = conv["rows_compared"]
    assert conv["equal"] and rows["postgres"] == rows["cassandra"] == conv["node3_rows"] > 0, conv


@pytest.mark.second_lab  # bin/test runs it on the second lab: it balances the cluster halves
@pytest.mark.fault(F.NODE_FROZEN)
def test_observe_reports_and_never_acts_and_propose_acts_only_after_a_person_approves(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Issue 15, automation levels, on one frozen node3 (the lab registered again at each level):
    `observe`: the incident is assessed, its proposed steps go on the timeline and to Slack, and it escalates; no
    mitigation, pause, policy change, hint handoff, repair or verification. `propose`: the run suspends with the
    proposal (nothing applied meanwhile); once a person approves in the form, it mitigates, recovers and verifies."""
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run

    from deployments.names import INCIDENT_DEPLOYMENT
    from flows.incident import incident_response
    from tests.cluster.incident_env import run_flow

    node3 = lab.node("node3")
    for cid in LEVELS:
        close_open_incident(store, cid)
    trigger = {"source": "test", "nodes": ["node3"]}
    # The application of the proposing cluster: its write queue is the one that incident drains.
    proposing = service_parts(migrated(Settings()), cluster_id="lab-propose")
    lab.freeze("node3")
    try:
        lab.wait_seen(node3, up=False)
        spec = WorkloadSpec(rate=30, duration_s=3, keys=200, read_ratio=0.0)
        written = run_workload(proposing.service, spec, relay=proposing.relay)
        assert written.writes > 0 and written.write_errors == 0, written.as_dict()

        observed = run_flow(incident_response, served, cluster_id="lab-observe", trigger=trigger, follow_up_s=0)
        assert (observed["state"], observed["plan"]["action"]) == ("escalated", "wait_for_hints"), observed
        events = store.events(observed["incident_id"])
        proposed = next(e.data for e in events if e.kind == "proposed")
        assert proposed["level"] == "observe" and proposed["steps"][0].startswith("mitigate"), proposed
        steps = [e.data["data"] for e in events if e.kind == "transition"]
        assert steps and {d.get("level") for d in steps} == {"observe"}, steps  # the level on every step
        assert not {"mitigation_started", "mitigated", "hints_drained", "repaired", "verified"} & {
            e.kind for e in events
        }
        to_escalated = [e.data for e in events if e.kind == "transition" and e.data["to"] == "escalated"]
        assert to_escalated[0]["data"]["reason"].startswith("automation level observe on lab-observe: proposed")
        texts = [m.get("text", "") for m in SLACK[0].messages("C0LAB")]
        assert any(t.startswith("Escalated: automation level observe on lab-observe") for t in texts), texts

        params = {"cluster_id": "lab-propose", "trigger": trigger, "follow_up_s": 0, "approval_timeout_s": 600}
        with prefect_api(served):
            run = run_deployment(INCIDENT_DEPLOYMENT, parameters=params, timeout=0)
        wait_for(lambda: _flow_run_state(served, run.id) == "PAUSED", 300, "the run to suspend for approval", 2)
        incident = store.open_for("lab-propose")
        assert incident is not None
        kinds = [e.kind for e in store.events(incident.id)]
        assert "proposed" in kinds and "approval_requested" in kinds and "mitigated" not in kinds, kinds
        for cid in LEVELS:  # nothing applied by either level so far
            assert PolicyStore(parts.pg.pool, parts.pg.store.cfg).get(cid).mode is Mode.NORMAL
            assert RepairPauses(parts.pg.pool).get(cid) is None
        with prefect_api(served):
            resume_flow_run(run.id, run_input={"approved": True, "approver": "pytest-sre", "note": "go ahead"})
        wait_for(lambda: _incident_in(store, "lab-propose", "recovering"), 300, "the approved plan to recover")
    finally:
        lab.thaw("node3")
        proposing.close()
    wait_for(lambda: _completed(served, run.id), 300, "the approved run to finish", 2)
    events = store.events(incident.id)
    kinds = [e.kind for e in events]
    decided = [e.data for e in events if e.kind == "approval_decided"]
    ui = "pytest-sre (unverified: Prefect UI)"  # the form's typed name: open-source Prefect has no user identity
    assert decided == [{"approved": True, "approver": ui, "note": "go ahead", "level": "propose", "verified": False}]
    assert kinds.index("approval_decided") < kinds.index("mitigated"), kinds
    assert next(e.data for e in events if e.kind == "recovery_finished")["hints"]["state"] == "drained"
    assert [e.data["verdict"] for e in events if e.kind == "verified"] == ["converged"]
    assert store.get(incident.id).state.value == "resolved"
    assert PolicyStore(parts.pg.pool, parts.pg.store.cfg).get("lab-propose").mode is Mode.NORMAL
    for cid in LEVELS:
        close_open_incident(store, cid)


@pytest.mark.second_lab  # bin/test runs it on the second lab: it balances the cluster halves
@pytest.mark.fault(F.NODE_FROZEN, F.OUTAGE_PAST_HINT_WINDOW, F.FLOW_RUN_CRASHED)
def test_hint_window_exceeded_scoped_repair_survives_a_killed_flow_without_repeating_segments(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    """Issue scenarios 2 and 3: past the hint window the plan is a repair; the flow process (and its nodetool)
    is killed mid-repair; the crash resumer reschedules the same run, which takes the lease back, reconciles the
    interrupted segment with Cassandra and finishes; Cassandra's repair history shows no segment ran twice."""
    close_open_incident(store, cluster.id)
    node3 = lab.node("node3")
    nt = Nodetool(cluster)
    run_workload(parts.service, WorkloadSpec(rate=200, operations=300, keys=300, read_ratio=0.0), relay=parts.relay)
    started = parts.cql.execute("SELECT toTimestamp(now()) AS t FROM system.local")[0]["t"]
    for n in cluster.nodes:
        nt.run(n.name, "setmaxhintwindow", "2000")  # 2 s instead of 3 h, on the running lab
    try:
        lab.freeze("node3")
        lab.wait_seen(node3, up=False)
        spec = WorkloadSpec(rate=30, duration_s=10, keys=300, read_ratio=0.0)
        report = run_workload(parts.service, spec, relay=parts.relay)
        assert report.write_errors == 0, report.as_dict()
        run = _start_incident(served, cluster.id)
        incident_id = wait_for(
            lambda: _incident_in(store, cluster.id, "recovering"), 300, "the incident to be recovering"
        )
        plan = store.get(incident_id).plan
        assert plan is not None and plan["action"] == "repair", plan
        lab.thaw("node3")

        # Kill the flow process and its nodetool while a segment runs, after some segments completed.
        cp = RepairCheckpoints(parts.pg.pool)
        key = f"incident/{incident_id}"

        def mid_repair() -> bool:
            try:
                states = [r.state.value for r in cp.segments(key)]
            except Exception:  # the checkpoint tables may not exist yet
                return False
            return states.count("done") >= 2 and "running" in states

        wait_for(mid_repair, 300, "the repair to be under way", every_s=0.2)
        holder = _flow_run_pids(run.id)
        _signal_all(holder, signal.SIGKILL)
        at_kill = {r.seq: r.state.value for r in cp.segments(key)}
        wait_for(lambda: _completed(served, run.id), 480, "the resumed run to complete", every_s=2)
    finally:
        p3 = lab.process(node3)
        if p3 is not None and p3.frozen:
            lab.thaw("node3")
        for n in cluster.nodes:
            nt.run(n.name, "setmaxhintwindow", "10800000")

    segs = cp.segments(key)
    assert all(r.state.value == "done" for r in segs)
    done_before = [s for s, st in at_kill.items() if st == "done"]
    assert len(done_before) >= 2 and "running" in at_kill.values()
    # Evidence from Cassandra: every segment repaired successfully exactly once since this test began.
    history = parts.cql.execute(
        "SELECT parent_id, keyspace_name, requested_ranges, successful_ranges, started_at FROM"
        " system_distributed.parent_repair_history",
        timeout_s=30,
    )
    for r in segs:
        ok = [
            h
            for h in history
            if h["keyspace_name"] == r.segment.keyspace
            and set(h["requested_ranges"] or ()) == {r.segment.range_text}
            and set(h["successful_ranges"] or ()) == {r.segment.range_text}
            and h["started_at"] is not None
            and h["started_at"] >= started
        ]
        runs = [(str(h["parent_id"]), str(h["started_at"])) for h in ok]
        assert len(ok) == 1, (r.seq, r.segment, at_kill.get(r.seq), r.attempts, r.parent_id, runs)
    events = store.events(incident_id)
    # The killed run itself takes the lease back: its own run key, from its own (dead) holding. Within the TTL
    # that reads "same_run_key"; when the resumer's restart takes longer (a busy machine), the lease has
    # expired first and it reads "expired": the same run either way, and nobody else held it in between.
    holder = f"flow-run/{run.id}"
    taken = [(e.data.get("run_key"), e.data.get("previous_holder"), e.data.get("reason")) for e in events
             if e.kind == "lease_acquired"]  # fmt: skip
    assert taken[0][0] == str(run.id), taken
    assert any(k == str(run.id) and p == holder and r in ("same_run_key", "expired") for k, p, r in taken[1:]), taken
    assert all(k == str(run.id) for k, _, _ in taken), taken
    finished = [e for e in events if e.kind == "recovery_finished"][-1].data
    rep = finished["repair"]
    assert rep["resumed"] and rep["already_done"] >= len(done_before) and not rep["escalated"], rep
    assert store.get(incident_id).state.value == "resolved"
    conv = _converged(parts, cluster)
    rows = conv["rows_compared"]
    assert conv["equal"] and rows["postgres"] == rows["cassandra"] == conv["node3_rows"] > 0, conv
    # The killed run's interrupted segment closes on the fenced log when the resumed run reconciles its session.
    acted = _one_run_acting_at_a_time(incident_id)
    assert len(acted) == 2, acted  # the killed run and the resumed one (same flow run, a new token)
    print("scenario 2+3:", {"segments": len(segs), "done_at_kill": len(done_before), "repair": rep, "acted": acted})


def _kill_node3_and_wait_for_the_approval_request(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], store: IncidentStore, approval_timeout_s: float
) -> tuple[Any, str]:
    node3 = lab.node("node3")
    if lab.process(node3) is not None:  # else still dead from the expired approval's test: the same outage
        lab.kill("node3")
    lab.wait_seen(node3, up=False)
    from prefect.deployments import run_deployment

    from deployments.names import INCIDENT_DEPLOYMENT

    params = {
        "cluster_id": cluster.id,
        "trigger": {"source": "test", "nodes": ["node3"]},
        "heal_timeout_s": 15,
        "approval_timeout_s": approval_timeout_s,
    }
    with prefect_api(served):
        run = run_deployment(INCIDENT_DEPLOYMENT, parameters=params, timeout=0)
    wait_for(lambda: _flow_run_state(served, run.id) == "PAUSED", 300, "the incident run to suspend for approval", 2)
    incident = store.open_for(cluster.id)
    assert incident is not None and incident.state.value == "recovering"
    asked = [e for e in store.events(incident.id) if e.kind == "approval_requested"]
    assert [e.data["nodes"] for e in asked] == [[node3.address]], asked
    # suspended: the run's process exits, none is held while a human decides
    wait_for(lambda: not _alive(_flow_run_pids(run.id)), 60, "the suspended run's process to exit")
    assert _flow_run_state(served, run.id) == "PAUSED"
    return run, incident.id


@pytest.mark.ends_shared_lab(0)  # leaves node3 dead: the replacement test that follows replaces it
@pytest.mark.fault(F.NODE_KILLED, F.APPROVAL_TIMED_OUT)
def test_replacement_approval_that_expires_escalates(
    lab: Lab, cluster: ClusterConfig, served: dict[str, str], parts: ServiceParts, store: IncidentStore
) -> None:
    close_open_incident(store, cluster.id)
    run, incident_id = _kill_node3_and_wait_for_the_approval_request(lab, cluster, served, store, 10)
    wait_for(lambda: _completed(served, run.id), 120, "the expired approval to end the run", 2)
    inc = store.get(incident_id)
    assert inc.state.value == "escalated"
    decided = [e.data for e in store.events(incident_id) if e.kind == "approval_decided"]
    expired = {"approved": False, "approver": "approval-timeout", "note": decided[0]["note"], "level": "act"}
    assert decided == [expired | {"verified": False}]
    assert not any(e.kind == "node_replaced" for e in store.events(incident_id))
    assert lab.process(lab.node("node3")) is None  # nothing was replaced or restarted behind the human's back


@pytest.mark.ends_shared_lab(1)
@pytest.mark.fault(F.NODE_KILLED, F.SCHEMA_FROM_OLDER_VERSION)
def test_killed_node_is_replaced_after_approval_and_the_data_converges(
    lab: Lab, served: dict[str, str], store: IncidentStore, tmp_path: Path
) -> None:
    """Also an upgrade with a run in flight: the approval is asked by the version before versioned migrations
    (its results pickled, its tables made at the call sites), which is then stopped; `db upgrade` runs and this
    version's `serve` resumes the suspended run to a converged end."""
    # The shared lab as the other tests left it: the replacement changes its topology, so it runs after them;
    # the lab-down test that follows takes the changed lab down, then the tests with labs of their own run.
    # The expired-approval test before it leaves node3 dead (one outage for both); run alone, node3 is killed here.
    if not _only_node3_dead(lab):
        restore(lab)
    _replace_after_approval(lab, served, store, previous_version(tmp_path / "previous"))


def _as_the_previous_version_ran(lab: Lab, served: dict[str, str]) -> dict[str, str]:
    """The previous version's environment as an install of it had it: one PostgreSQL role owning its tables (it
    makes them at the call sites: the schema's owner here, as `db upgrade` then takes them over), and a nodetool
    that logs in to JMX (a version before JMX authentication, given the lab's login the way an operator configures
    any cluster: an explicit `clusters.lab` entry, whose nodetool command carries `-u` and a password file)."""
    import json

    from cassandra_recovery.lab.postgres import lab_password
    from cassandra_recovery.lab.registry import lab_cluster_config

    settings = Settings()
    cluster = lab_cluster_config(lab.config)
    login = ["-u", cluster.jmx_username or "", "-pwf", cluster.jmx_password_file or ""]
    entry = cluster.model_dump(mode="json", exclude={"jmx_username", "jmx_password_file"})
    entry["nodetool_command"] = [*cluster.nodetool_command, *login]
    owner = settings.postgres.migration_user or settings.postgres.user
    return served | {
        "CASSANDRA_RECOVERY_CLUSTERS": json.dumps({cluster.id: entry}),
        "CASSANDRA_RECOVERY_POSTGRES__USER": owner,
        "CASSANDRA_RECOVERY_POSTGRES__PASSWORD": lab_password(
            settings.lab, None if owner == settings.postgres.user else owner
        ),
    }


def _only_node3_dead(lab: Lab) -> bool:
    st = lab.state()
    if st.partitioned or st.gossip_restarted or st.cuts:
        return False
    procs = {n.name: lab.process(n) for n in st.spec.nodes}
    return procs.pop("node3", "absent") is None and all(p is not None and not p.frozen for p in procs.values())


def _replace_after_approval(lab: Lab, served: dict[str, str], store: IncidentStore, previous: Path) -> None:
    from cassandra_recovery.lab.registry import lab_cluster_config

    cluster = lab_cluster_config(lab.config)
    offset = lab.config.address_offset  # bin/test runs this on the second lab, beside the shared one
    node1, node2, node3, node4 = (node_address(i, offset) for i in (1, 2, 3, 4))
    p = service_parts(migrated(Settings()))
    try:
        close_open_incident(store, cluster.id)
        d = p.pg.store.cfg
        with p.pg.pool.connection() as conn:
            tables = [sql.Identifier(t) for t in (d.orders_table, d.outbox_table, d.policy_table)]
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))
            conn.commit()
        run_workload(p.service, WorkloadSpec(rate=200, operations=300, keys=300, read_ratio=0.0), relay=p.relay)
        dead_host_id = next(r["host_id"] for r in p.cql.peers(node1) if str(r["peer"]) == node3)
        _Serve.swap(previous, _as_the_previous_version_ran(lab, served), log_file("serve-previous"))  # it asks
        run, incident_id = _kill_node3_and_wait_for_the_approval_request(lab, cluster, served, store, 600)
        _Serve.stop()
        upgrade = subprocess.run(
            [sys.executable, "-m", "cassandra_recovery.cli", "db", "upgrade"],
            env=served, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr
        _Serve.swap(ROOT, served, log_file("serve"))  # this version resumes
        # writes go on while the node is dead (queued or delivered at the remaining replicas)
        report = run_workload(p.service, WorkloadSpec(rate=30, duration_s=5, keys=300, read_ratio=0.0), relay=p.relay)
        assert report.write_errors == 0
        from prefect.flow_runs import resume_flow_run

        with prefect_api(served):
            resume_flow_run(run.id, run_input={"approved": True, "approver": "pytest-sre", "note": "dead disk"})
        wait_for(lambda: _completed(served, run.id), 600, "the replacement to finish", 3)
        events = store.events(incident_id)
        decided = [e.data for e in events if e.kind == "approval_decided"]
        ui = "pytest-sre (unverified: Prefect UI)"  # the form's typed name: open-source Prefect has no user identity
        assert decided == [{"approved": True, "approver": ui, "note": "dead disk", "level": "act", "verified": False}]
        replaced = [e.data for e in events if e.kind == "node_replaced"]
        assert [(r["dead_address"], r["new_address"], r["approved_by"]) for r in replaced] == [(node3, node4, ui)]
        finished = [e.data for e in events if e.kind == "recovery_finished"][-1]
        assert finished["repair"]["segments"] > 0 and not finished["repair"]["escalated"], finished["repair"]
        assert store.get(incident_id).state.value == "resolved"
        assert [n.name for n in lab.state().spec.nodes] == ["node1", "node2", "node4"]
        status = {s.address: s.state for s in lab.status()}
        assert status == {node1: "UN", node2: "UN", node4: "UN"}, status
        p.cql.rediscover()
        assert p.cql.local(node4)["host_id"] != dead_host_id
        res = Comparer(p.pg.pool, p.cql, d).run(chunks=16).as_dict()
        local = _own_count(p, node4, [node1, node2, node4])  # the new node's own copy
        rows = res["rows_compared"]
        assert res["equal"] and rows["postgres"] == rows["cassandra"] == local > 0, (res, local)
        print("replacement:", replaced, finished["steps"])
    finally:
        p.close()
