"""Child processes get an allow-list of the environment: no configured secret reaches nodetool, PostgreSQL's tools,
Prometheus or any other child unless that child needs it and is given it explicitly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cassandra_recovery.clients.child_env import child_env, own_config
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.lab import postgres as lab_postgres
from cassandra_recovery.lab.prefect_server import server_env
from cassandra_recovery.settings import ClusterConfig, NodeAccess, Settings

pytestmark = pytest.mark.area("lab")

SECRETS = {
    "CASSANDRA_RECOVERY_POSTGRES__PASSWORD": "pg-secret-1",
    "CASSANDRA_RECOVERY_SLACK__BOT_TOKEN": "xoxb-secret-2",
    "CASSANDRA_RECOVERY_RECEIVER__SHARED_SECRET": "recv-secret-3",
    "PREFECT_API_AUTH_STRING": "admin:secret-4",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-5",
}
# Not secret by name, but the tool's own settings: only children that are this tool get them.
OWN = {"CASSANDRA_RECOVERY_DOMAIN__KEYSPACE": "shop"}
PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in {**SECRETS, **OWN, "JAVA_HOME": "/opt/java", "LC_TIME": "C"}.items():
        monkeypatch.setenv(k, v)
    return SECRETS


def _leaks(env: dict[str, str]) -> list[str]:
    return sorted(k for k, v in env.items() if k in SECRETS or k in OWN or v in SECRETS.values())


def test_child_env_keeps_the_allow_list_and_drops_secrets_even_when_asked() -> None:
    environ = {**SECRETS, **OWN, "PATH": "/bin", "LC_ALL": "C", "HOME": "/root", "KUBECONFIG": "/k", "OTHER": "x"}
    env = child_env(names=["KUBECONFIG", "PREFECT_API_AUTH_STRING"], environ=environ)
    assert env == {"PATH": "/bin", "LC_ALL": "C", "HOME": "/root", "KUBECONFIG": "/k"}
    given = child_env(extra={"PGPASSWORD": "needed"}, environ=environ)
    assert given["PGPASSWORD"] == "needed"  # explicit, for the one child that needs it
    assert own_config(environ) == {k: v for k, v in {**SECRETS, **OWN}.items() if k.startswith("CASSANDRA_RECOVERY_")}


def test_nodetool_runs_without_the_secrets(secrets: dict[str, str]) -> None:
    node = NodeAccess(name="n1", address="127.0.0.2")
    cluster = ClusterConfig(
        id="c", contact_points=["127.0.0.2"], local_datacenter="dc1", nodes=[node],
        nodetool_command=[sys.executable, "-c", PRINT_ENV],
    )  # fmt: skip
    env = json.loads(Nodetool(cluster).output(node, "status"))
    assert _leaks(env) == []
    assert (env["LANG"], env["LC_ALL"], env["JAVA_HOME"]) == ("C", "C", "/opt/java")


def test_postgres_tools_run_without_the_secrets(secrets: dict[str, str]) -> None:
    proc = lab_postgres._run([sys.executable, "-c", PRINT_ENV], env={"DEBIAN_FRONTEND": "noninteractive"})
    env = json.loads(proc.stdout)
    assert _leaks(env) == []
    assert (env["LANG"], env["DEBIAN_FRONTEND"], env["LC_TIME"]) == ("C", "noninteractive", "C")


def test_the_prefect_server_gets_its_own_auth_and_database_but_no_other_secret(
    secrets: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings(lab={"base_dir": tmp_path}, prefect={"auth_string": "admin:server-auth"})  # type: ignore[arg-type]
    env = server_env(settings)
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == "admin:server-auth"  # it needs these two
    assert "pg-secret-1" in env["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    leaks = [k for k in _leaks(env) if k != "PREFECT_API_AUTH_STRING" or env[k] != "admin:server-auth"]
    assert leaks == []
