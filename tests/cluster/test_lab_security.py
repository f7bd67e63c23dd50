"""Issue 20 on a real lab: a node's JMX refuses whoever lacks the lab's password, the project's nodetool (and sjk)
get in with it, the node's password file is its user's alone, and the lab finds its JVMs by main class and uid."""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

import pytest

from cassandra_recovery.clients.jmx import JmxMetrics
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.lab import procs
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.jmx_auth import JMX_USER, NODE_PASSWORD_FILE
from cassandra_recovery.parsers.info import parse_info
from cassandra_recovery.settings import ClusterConfig

pytestmark = pytest.mark.area("lab")


def test_jmx_refuses_a_client_without_the_labs_password_and_lets_the_project_in(
    lab: Lab, cluster: ClusterConfig
) -> None:
    node = lab.state().spec.nodes[0]
    secret = lab.node_dir(node) / "conf" / NODE_PASSWORD_FILE
    st = secret.stat()
    owner = pwd.getpwnam(node.user).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (owner, 0o400)

    anonymous = Nodetool(cluster.model_copy(update={"jmx_username": None, "jmx_password_file": None}))
    refused = anonymous.run(node.name, "info", check=False)
    assert refused.returncode != 0
    assert "Authentication failed! Credentials required" in refused.stdout + refused.stderr
    with tempfile.TemporaryDirectory() as tmp:
        wrong_file = Path(tmp) / "wrong.password"
        wrong_file.write_text(f"{JMX_USER} not-the-password\n")
        wrong = Nodetool(cluster.model_copy(update={"jmx_password_file": str(wrong_file)}))
        denied = wrong.run(node.name, "info", check=False)
    assert denied.returncode != 0 and "Invalid username or password" in denied.stdout + denied.stderr

    assert parse_info(Nodetool(cluster).output(node.name, "info")).gossip_active
    assert JmxMetrics(cluster).hint_counters(node.name).total_hints >= 0  # sjk, through the same login
    found = procs.lab_processes(lab.config.base_dir, lab.config.user_prefix)
    assert sorted(p.node_dir.name for p in found) == sorted(n.name for n in lab.state().spec.nodes)
