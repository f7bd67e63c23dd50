"""One real 3-node lab shared by the cluster tier, restored to all-UN between tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.layout import plan_lab
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.lab.prefect_server import client_env, ensure_prefect_server, stop_prefect_server
from cassandra_recovery.lab.registry import lab_cluster_config
from cassandra_recovery.settings import ClusterConfig, Settings
from tests.cluster import slack_seen
from tests.fakes.slack_server import FakeSlackServer
from tests.migrated import migrated

# Incidents close right after their first passing verification unless a test asks for a follow-up.
os.environ.setdefault("CASSANDRA_RECOVERY_VERIFICATION__FOLLOW_UP_S", "0")
# No routine repair may start in the middle of a test (a test that wants one sets its own schedule).
os.environ.setdefault("CASSANDRA_RECOVERY_REPAIR_SCHEDULES", "[]")

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 1200  # a first run resolves the Cassandra runtime with Maven, then about 3 minutes of demo

# ERROR lines a test may provoke on purpose; anything else in a node log fails the test.
ALWAYS_ALLOWED: tuple[str, ...] = ()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
    # Tests that change the shared lab for good run after the rest: first the one that takes it as it is (the
    # replacement, saving a lab start), then those that replace it with a differently configured one.
    items.sort(key=_lab_order)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed cluster test carries the tails of the project's logs it wrote (CI keeps only the output)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)  # fixtures' teardown reads whether the test failed
    if report.when == "call" and report.failed:
        from tests.cluster.incident_env import recent_log_tails

        for name, tail in recent_log_tails(call.start):
            report.sections.append((f"{name} (last lines)", tail))


def _lab_order(item: pytest.Item) -> tuple[int, int]:
    if item.get_closest_marker("first_run"):
        return -1, 0  # reports how the tier's lab came up
    ends = item.get_closest_marker("ends_shared_lab")
    if ends is not None:
        return 1, int(ends.args[0]) if ends.args else 0
    return (2 if item.get_closest_marker("own_lab") else 0), 0


class _Restored:
    """Whether the lab was restored after the last test, so the next one need not restore it again."""

    done = False


def _untouched(lab: Lab) -> bool:
    """Cheap check (no nodetool): every node's process runs, none frozen, nothing partitioned or cut."""
    st = lab.state()
    if st.partitioned or st.gossip_restarted or st.cuts:
        return False
    return all((p := lab.process(n)) is not None and not p.frozen for n in st.spec.nodes)


@dataclass(frozen=True)
class FirstRun:
    """What `cassandra-recovery demo` did when it brought the tier's lab up."""

    fresh: bool  # no lab directory before: the path of a new user's first `bin/demo`
    returncode: int
    output: str


def _first_run(settings: Settings) -> FirstRun:
    """The demo exactly as the README runs it (after bin/install), here from bin/test's temporary lab directory
    and throwaway PostgreSQL cluster: it starts the lab, PostgreSQL and Prefect that the tier then reuses."""
    fresh = not settings.lab.base_dir.exists()
    print(f"[lab] first run: cassandra-recovery demo (lab directory {settings.lab.base_dir}, fresh: {fresh})")
    log = ROOT / ".pytest-demo.log"
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "cassandra_recovery.cli", "demo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            timeout=DEMO_TIMEOUT_S,
            check=False,
        )
    return FirstRun(fresh, proc.returncode, log.read_text(errors="replace"))


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    """The lab the demo's first run started (reused by every test), or a fresh default one if the demo failed
    before it could start it (test_first_run reports that failure)."""
    settings = Settings()
    lab = Lab(settings.lab, progress=lambda m: print(f"[lab] {m}", flush=True))
    default = plan_lab(user_prefix=settings.lab.user_prefix, offset=settings.lab.address_offset)
    state = lab.state() if (settings.lab.base_dir / "lab.json").exists() else None
    if state is not None and state.spec != default:
        lab.down()  # a differently configured lab was left behind: start from the default
    request.config._cr_lab_started = True  # type: ignore[attr-defined]
    if any(item.get_closest_marker("first_run") for item in request.session.items):  # not for a single test
        request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # the demo starts PostgreSQL
        request.config._cr_first_run = _first_run(settings)  # type: ignore[attr-defined]
    if all(item.get_closest_marker("own_lab") for item in request.session.items):
        return lab  # every test starts a lab of its own (CI runs these beside the shared lab): none to share
    lab.up()  # idempotent: the demo's lab as it left it
    return lab


@pytest.fixture(scope="session")
def cluster(lab: Lab) -> ClusterConfig:
    return lab_cluster_config(lab.config)


@pytest.fixture(scope="session")
def cql(cluster: ClusterConfig) -> Iterator[CqlClient]:
    client = CqlClient(cluster)
    yield client
    client.close()


def restore(lab: Lab) -> None:
    """Thaw, heal and restart whatever a test left broken, then wait for every node UN.

    A node healed from a partition keeps a JVM whose gossip was stopped and started again; once (in CI)
    such a node went on seeing a killed peer UN for minutes. Restart it so the next test gets a clean one.
    """
    st = lab.state()
    for n in st.spec.nodes:
        p = lab.process(n)
        if p is None:
            lab.start(n.name)
        elif p.frozen:
            lab.thaw(n.name, wait=False)
    for name in list(lab.state().partitioned):
        lab.heal(name, wait=False)
    for name in list(lab.state().gossip_restarted):
        lab.stop(name)
        lab.start(name)
    lab.wait_all_up()


def _node_logs(lab: Lab) -> list[Path]:
    """Every node log there is now (a test may have replaced the lab or added a node)."""
    return sorted((lab.config.base_dir / "nodes").glob("*/logs/system.log"))


def _log_offsets(lab: Lab) -> dict[Path, int]:
    return {p: p.stat().st_size for p in _node_logs(lab)}


def _unexpected_errors(lab: Lab, offsets: dict[Path, int], allowed: list[str]) -> list[str]:
    """ERROR lines written since the offsets (a log that is new or was started afresh is read whole)."""
    unexpected = []
    for path in _node_logs(lab):
        off = offsets.get(path, 0)
        with path.open("rb") as f:
            if f.seek(0, 2) < off:
                off = 0
            f.seek(off)
            for line in f.read().decode(errors="replace").splitlines():
                if line.startswith("ERROR") and not any(re.search(a, line) for a in allowed):
                    unexpected.append(f"{path.parent.parent.name}: {line[:300]}")
    return unexpected


@pytest.fixture(autouse=True)
def healthy_lab(request: pytest.FixtureRequest, lab: Lab) -> Iterator[Lab]:
    """Each cluster test starts from an all-UN lab and fails on unexpected ERROR lines in node logs. Tests that
    manage the lab themselves get no restore, but the same log check over the logs there are when they end
    (a test that takes its lab down with its data leaves none to check)."""
    marker = request.node.get_closest_marker("allow_log_errors")
    allowed = [*ALWAYS_ALLOWED, *(marker.args if marker else ())]
    manages_lab = request.node.get_closest_marker("own_lab") or request.node.get_closest_marker("ends_shared_lab")
    if manages_lab:
        _Restored.done = False
    elif not (_Restored.done and _untouched(lab)):
        restore(lab)
    _Restored.done = False
    offsets = _log_offsets(lab)
    yield lab
    unexpected = _unexpected_errors(lab, offsets, allowed)
    if not manages_lab:
        restore(lab)
        _Restored.done = True
    if unexpected:
        pytest.fail("unexpected ERROR lines in node logs:\n" + "\n".join(unexpected[:20]))


@pytest.fixture(scope="session")
def prefect_server(lab: Lab, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """One Prefect server for the whole tier (a start costs 10-20 s; its state lives in PostgreSQL anyway)."""
    settings = Settings()
    ensure_postgres(settings)
    request.config._cr_postgres_started = True  # type: ignore[attr-defined]
    migrated(settings)  # what `cassandra-recovery db upgrade` does; `serve` refuses to start without it
    ensure_prefect_server(settings)
    yield client_env(settings)
    stop_prefect_server(settings)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlackServer]:
    with FakeSlackServer(channels={"C0LAB": "cassandra-lab"}) as server:
        monkeypatch.setenv("CASSANDRA_RECOVERY_SLACK_TOKEN", server.token)
        monkeypatch.setenv("CASSANDRA_RECOVERY_SLACK_BASE_URL", server.url)
        for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.delenv(proxy, raising=False)
        slack_seen.watch(server)  # what Slack was sent is one of the places the secrets check reads
        yield server
        slack_seen.closed(server)


@pytest.fixture
def store(prefect_server: dict[str, str]) -> Iterator[IncidentStore]:
    pool = make_pool(Settings(), max_size=2)
    s = IncidentStore(pool)
    yield s
    pool.close()
