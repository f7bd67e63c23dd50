"""Which command lines are the project's processes (the leftover check of `bin/test` and `lab down`)."""

from __future__ import annotations

import pytest

from cassandra_recovery.lab.leftovers import classify

pytestmark = pytest.mark.area("lab")
PY = "/work/main/.venv/bin/python"


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["/usr/bin/java", "-Xss256k", "-Dcassandra.storagedir=/var/lib/cassandra-recovery/lab/nodes/node1/data",
          "org.apache.cassandra.service.CassandraDaemon"], "lab-jvm"),
        ([PY, "/work/main/.venv/bin/prefect", "server", "start", "--host", "127.0.0.1", "--port", "4200"],
         "prefect-server"),
        ([PY, "-m", "uvicorn", "--app-dir", "/x", "--factory", "prefect.server.api.server:create_app"],
         "prefect-server"),
        ([PY, "-m", "prefect.engine"], "flow-run"),
        ([PY, "-m", "cassandra_recovery.cli", "serve"], "pipeline"),
        ([PY, "-m", "cassandra_recovery.cli", "receiver", "--port", "9095"], "pipeline"),
        ([PY, "-m", "cassandra_recovery.cli", "detector", "--cluster", "lab"], "pipeline"),
        ([PY, "/work/main/.venv/bin/cassandra-recovery", "queue", "worker"], "pipeline"),
        ([PY, "-m", "cassandra_recovery.cli", "regions", "watch", "--region", "dc2"], "pipeline"),
        ([PY, "/work/main/.venv/bin/cassandra-recovery", "lab", "load", "--rate", "50"], "pipeline"),
        (["/usr/bin/prometheus", "--config.file=/tmp/x/monitoring/prometheus.yml"], "prometheus"),
        (["/usr/bin/prometheus-alertmanager", "--config.file=/tmp/x/monitoring/alertmanager.yml"], "alertmanager"),
    ],
)  # fmt: skip
def test_project_processes_are_recognised(argv: list[str], kind: str) -> None:
    assert classify(argv) == kind


@pytest.mark.parametrize(
    "argv",
    [
        [],
        [PY, "-m", "cassandra_recovery.cli", "lab", "down", "--postgres"],  # the command stopping them
        [PY, "/work/main/.venv/bin/cassandra-recovery", "lab", "leftovers"],
        [PY, "-m", "cassandra_recovery.cli", "queue", "status"],  # one-shot commands finish by themselves
        [PY, "-m", "cassandra_recovery.cli", "regions", "status"],
        [PY, "-m", "pytest", "tests/cluster"],
        ["/usr/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml"],  # the distribution's own
        ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main"],
        ["/usr/bin/java", "-jar", "someone-elses.jar"],
    ],
)
def test_other_processes_are_left_alone(argv: list[str]) -> None:
    assert classify(argv) is None


def test_a_process_belongs_to_the_lab_its_environment_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two labs side by side (CI): a service run from this checkout for lab A is not lab B's to stop."""
    import os
    import subprocess
    import sys

    from cassandra_recovery.lab.leftovers import BASE_DIR_ENV, ROOT, owned

    a, b = tmp_path / "a", tmp_path / "b"
    env = {k: v for k, v in os.environ.items() if k != BASE_DIR_ENV}
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    named = subprocess.Popen(sleeper, cwd=ROOT, env={**env, BASE_DIR_ENV: str(a)})
    unnamed = subprocess.Popen(sleeper, cwd=ROOT, env=env)
    try:
        assert owned(named.pid, a) and not owned(named.pid, b)
        assert owned(unnamed.pid, a) and owned(unnamed.pid, b)  # from this checkout, naming no lab: anyone's
    finally:
        for p in (named, unnamed):
            p.kill()
            p.wait()
