"""Issue 20: the lab signals only its own node JVMs. Before, any process whose command line named a storage directory
under the lab's was taken for a lab node (and stopped by `lab down`, frozen by `lab freeze`...): now it must also run
Cassandra's daemon main class as that node's user (the Uid line of /proc/<pid>/status)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cassandra_recovery.lab import leftovers, procs
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.layout import plan_lab
from cassandra_recovery.settings import LabConfig

pytestmark = pytest.mark.area("lab")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc"
BASE = Path("/var/tmp/labsec/lab")  # where the captured node ran
NODE_UID = 987  # its node user's, as captured


def _captured() -> tuple[list[str], int | None]:
    argv = (FIXTURES / "lab_node_cmdline.txt").read_text().splitlines()[1:]  # first line: what produced it
    status = (FIXTURES / "lab_node_status.txt").read_text().split("\n", 1)[1]
    return argv, procs.status_uid(status)


def _expected(name: str) -> int | None:
    return {"node1": NODE_UID}.get(name)


def test_a_captured_lab_node_is_recognised() -> None:
    argv, uid = _captured()
    assert uid == NODE_UID
    assert procs.lab_node_dir(argv, uid, BASE, _expected) == BASE.resolve() / "nodes" / "node1"


def test_the_same_command_line_run_by_another_user_is_not_the_labs() -> None:
    argv, _ = _captured()
    assert procs.lab_node_dir(argv, 0, BASE, _expected) is None
    assert procs.lab_node_dir(argv, NODE_UID, BASE, lambda name: None) is None  # no such node user
    assert procs.lab_node_dir(argv, None, BASE, _expected) is None  # gone before its status was read


@pytest.mark.parametrize(
    "change",
    [
        lambda a: [*a[:-1], "org.apache.cassandra.tools.NodeTool"],  # another main class
        lambda a: ["/bin/sleep", "600", *[x for x in a if x.startswith(procs.STORAGE_DIR_ARG)]],  # not Cassandra
        lambda a: [x.replace("/nodes/node1", "/elsewhere/node1") for x in a],  # not a node directory of the lab
        lambda a: [*a[:-1], "-Dcassandra.storagedir=/var/tmp/labsec/lab/nodes/node2", a[-1]],  # two storage dirs
    ],
)
def test_a_command_line_that_only_names_the_storage_dir_is_not_the_labs(change: object) -> None:
    argv, uid = _captured()
    assert procs.lab_node_dir(change(argv), uid, BASE, _expected) is None  # type: ignore[operator]


def test_status_uid_reads_the_real_uid() -> None:
    assert procs.status_uid("Name:\tjava\nUid:\t1001\t0\t0\t0\nGid:\t5\t5\t5\t5\n") == 1001
    assert procs.status_uid("Name:\tjava\n") is None


@pytest.fixture
def impostor(tmp_path: Path) -> Iterator[tuple[Lab, subprocess.Popen[bytes]]]:
    """A process of ours (not the node user's) whose command line looks like the lab's node1."""
    config = LabConfig(base_dir=tmp_path / "lab", user_prefix="crlab-unit-", address_offset=37)
    node_dir = config.base_dir / "nodes" / "node1"
    node_dir.mkdir(parents=True)
    argv = [sys.executable, "-c", "import time; time.sleep(600)", f"-Dcassandra.storagedir={node_dir}"]
    proc = subprocess.Popen([*argv, "org.apache.cassandra.service.CassandraDaemon"])
    try:
        yield Lab(config, progress=lambda m: None), proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="as root the lab's nodes run as their own users")
def test_a_process_naming_the_labs_storage_dir_is_neither_found_nor_signalled(
    impostor: tuple[Lab, subprocess.Popen[bytes]],
) -> None:
    lab, proc = impostor
    node = plan_lab(nodes=1, user_prefix=lab.config.user_prefix, offset=lab.config.address_offset).nodes[0]
    assert lab.process(node) is None
    found = leftovers.scan(lab.config.base_dir, lab.config.user_prefix)
    assert proc.pid not in [p.pid for p in found]
    assert proc.poll() is None
