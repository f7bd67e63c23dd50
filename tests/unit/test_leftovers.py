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
