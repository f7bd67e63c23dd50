"""Issue 20: JMX asks for a password, and nodetool (and the JMX reads through its sjk) sends it from a file: never on
argv, where `ps` shows it to every user. Before, the lab's nodes ran JMX with authentication off and a password file
could not be configured for a real cluster."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from cassandra_recovery.clients.jmx import HINT_PATTERN, JmxMetrics
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.lab.layout import daemon_argv, plan_lab
from cassandra_recovery.lab.registry import lab_cluster_config
from cassandra_recovery.settings import ClusterConfig, LabConfig, NodeAccess

pytestmark = pytest.mark.area("lab")
# A stand-in for nodetool: prints its argv and the password file it was given.
ECHO = (
    "import json, sys; a = sys.argv[1:]; "
    "f = a[a.index('-pwf') + 1] if '-pwf' in a else None; "
    "print(json.dumps({'argv': a, 'pwf': open(f).read() if f else None}))"
)
NODE = NodeAccess(name="n1", address="10.0.0.1", jmx_host="10.0.0.1", jmx_port=7199)


def _cluster(**jmx: object) -> ClusterConfig:
    return ClusterConfig(
        id="c", contact_points=["10.0.0.1"], local_datacenter="dc1", nodes=[NODE],
        nodetool_command=[sys.executable, "-c", ECHO], **jmx,  # type: ignore[arg-type]
    )  # fmt: skip


def _call(cluster: ClusterConfig, node: NodeAccess = NODE, *args: str) -> dict[str, object]:
    return json.loads(Nodetool(cluster).output(node, *(args or ("status",))))  # type: ignore[no-any-return]


def test_a_configured_password_file_is_passed_with_pwf_and_no_password_is_on_argv(tmp_path: Path) -> None:
    pwf = tmp_path / "jmx.password"
    pwf.write_text("monitor s3cret-jmx\n")
    argv = Nodetool(_cluster(jmx_username="monitor", jmx_password_file=str(pwf))).argv(NODE, ["status"])
    assert argv[-7:] == ["-p", "7199", "-u", "monitor", "-pwf", str(pwf), "status"]
    assert "-pw" not in argv and not any("s3cret" in a for a in argv)


def test_a_password_given_in_settings_goes_through_a_private_file_never_argv() -> None:
    seen = _call(_cluster(jmx_username="monitor", jmx_password=SecretStr("s3cret-jmx")))
    argv = seen["argv"]
    assert isinstance(argv, list) and "-pw" not in argv and not any("s3cret" in a for a in argv)
    assert argv[argv.index("-u") + 1] == "monitor" and "-pwf" in argv
    assert seen["pwf"] == "monitor s3cret-jmx\n"  # nodetool's -pwf format (a JMX password file's too)


def test_a_node_with_its_own_credentials_uses_them(tmp_path: Path) -> None:
    own = NodeAccess(name="n2", address="10.0.0.2", jmx_username="local", jmx_password_file=str(tmp_path / "n2"))
    cluster = _cluster(jmx_username="monitor", jmx_password_file=str(tmp_path / "all"))
    argv = Nodetool(cluster).argv(own, ["info"])
    assert argv[argv.index("-u") :] == ["-u", "local", "-pwf", str(tmp_path / "n2"), "info"]


def test_sjk_reads_through_the_same_authenticated_connection(tmp_path: Path) -> None:
    """`nodetool sjk` takes nodetool's own connection (Cassandra's Sjk.java): the credentials are nodetool's global
    options and go before `sjk`; after it they would be sjk's arguments."""
    cluster = _cluster(jmx_username="monitor", jmx_password_file=str(tmp_path / "pw"))
    (tmp_path / "pw").write_text("monitor x\n")
    recorded: list[list[str]] = []

    class Recording(Nodetool):
        def output(self, node: str | NodeAccess, *args: str, timeout_s: float | None = None) -> str:
            recorded.append(self.argv(self.cluster.node(node) if isinstance(node, str) else node, args))
            return ""

    JmxMetrics(cluster, Recording(cluster))._mx("n1", HINT_PATTERN)
    argv = recorded[0]
    assert argv.index("-u") < argv.index("-pwf") < argv.index("sjk")


def test_the_lab_registers_its_jmx_credentials_and_its_nodes_require_them(tmp_path: Path) -> None:
    from cassandra_recovery.lab import jmx_auth

    lab = LabConfig(base_dir=tmp_path / "lab")
    cluster = lab_cluster_config(lab)
    assert (cluster.jmx_username, cluster.jmx_password_file) == (jmx_auth.JMX_USER, str(tmp_path / "lab/jmx.password"))
    node = plan_lab().nodes[0]
    argv = daemon_argv("java", tmp_path / "lib", node, tmp_path / "nodes/node1", "512m")
    assert "-Dcom.sun.management.jmxremote.authenticate=true" in argv
    assert not any(a.endswith("authenticate=false") for a in argv)
    assert f"-Dcom.sun.management.jmxremote.password.file={tmp_path}/nodes/node1/conf/jmxremote.password" in argv


def test_the_lab_password_is_generated_once_into_a_private_file(tmp_path: Path) -> None:
    from cassandra_recovery.lab import jmx_auth

    lab = LabConfig(base_dir=tmp_path / "lab")
    first = jmx_auth.lab_jmx_password(lab)
    assert len(first) >= 24 and jmx_auth.lab_jmx_password(lab) == first
    path = jmx_auth.client_file(lab)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"{jmx_auth.JMX_USER} {first}\n"
