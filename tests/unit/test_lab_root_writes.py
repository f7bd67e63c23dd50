"""Issue 20: the lab runs as root and must never write through a path a node user controls. Before, the node
directory and its conf/ and logs/ were the node user's, and the lab wrote cassandra.yaml, logback.xml (conf/ is
first on the JVM's classpath) and the JVM's stdout through whatever symlink the node user had planted there."""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cassandra_recovery.errors import LabError
from cassandra_recovery.lab import users
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.layout import plan_lab
from cassandra_recovery.lab.registry import LabState, save_state
from cassandra_recovery.settings import LabConfig

pytestmark = [
    pytest.mark.area("lab"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the finding is about root writing as a node user"),
]
NOBODY = pwd.getpwnam("nobody")
ROOTS = b"root's own file\n"


@dataclass
class Planted:
    lab: Lab
    state: LabState
    node_dir: Path
    victim_dir: Path  # root's: nothing may appear, change or change hands in it
    target: Path  # a root-owned file the planted symlinks point at

    def untouched(self) -> bool:
        st = self.target.stat()
        listing = sorted(p.name for p in self.victim_dir.iterdir())
        return self.target.read_bytes() == ROOTS and (st.st_uid, st.st_gid) == (0, 0) and listing == ["target"]

    def plant(self, rel: str, to: Path) -> None:
        link = self.node_dir / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.chown(link.parent, NOBODY.pw_uid, NOBODY.pw_gid)
        link.symlink_to(to)
        os.chown(link, NOBODY.pw_uid, NOBODY.pw_gid, follow_symlinks=False)  # what the node user could do


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Planted]:
    """A lab whose node1 directory a node user (here `nobody`) owns, as every lab before this fix left it."""
    monkeypatch.setattr(users, "ensure_user", lambda name: (NOBODY.pw_uid, NOBODY.pw_gid))  # no useradd in a unit test
    base = tmp_path / "lab"
    base.mkdir(mode=0o755)
    victim_dir = tmp_path / "root-only"
    victim_dir.mkdir(mode=0o755)
    target = victim_dir / "target"
    target.write_bytes(ROOTS)
    config = LabConfig(base_dir=base)
    spec = plan_lab(nodes=1)
    state = LabState(spec=spec, java="/bin/echo", lib_dir=str(tmp_path / "lib"), tools_conf=str(tmp_path), version="x")
    save_state(config, state)
    node_dir = base / "nodes" / "node1"
    node_dir.mkdir(parents=True)
    os.chown(node_dir, NOBODY.pw_uid, NOBODY.pw_gid)
    yield Planted(Lab(config, progress=lambda m: None), state, node_dir, victim_dir, target)


@pytest.mark.parametrize(
    "name", ["cassandra.yaml", "cassandra-rackdc.properties", "logback.xml", "jmxremote.password", "jmxremote.access"]
)
def test_a_symlink_planted_at_a_conf_file_is_replaced_never_written_through(planted: Planted, name: str) -> None:
    planted.plant(f"conf/{name}", planted.target)
    planted.lab._prepare(planted.state, planted.state.spec.nodes[0])
    assert planted.untouched()
    written = planted.node_dir / "conf" / name
    assert not written.is_symlink() and written.stat().st_nlink == 1
    for d in (planted.node_dir, planted.node_dir / "conf"):  # taken back: the node user can plant nothing more
        st = d.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755), d


def test_only_the_jmx_password_file_is_the_node_users_and_only_readable_by_it(planted: Planted) -> None:
    planted.lab._prepare(planted.state, planted.state.spec.nodes[0])
    conf = planted.node_dir / "conf"
    modes = {p.name: (p.stat().st_uid, stat.S_IMODE(p.stat().st_mode)) for p in conf.iterdir()}
    assert modes.pop("jmxremote.password") == (NOBODY.pw_uid, 0o400)
    assert set(modes.values()) == {(0, 0o644)}, modes


@pytest.mark.parametrize("rel", ["conf", "logs", "data", "commitlog", "hints"])
def test_a_symlinked_directory_is_refused_and_what_it_points_at_keeps_its_owner(planted: Planted, rel: str) -> None:
    planted.plant(rel, planted.victim_dir)
    try:
        planted.lab._prepare(planted.state, planted.state.spec.nodes[0])
    except LabError as e:
        assert "refusing to write through" in str(e) and rel in str(e)
    assert planted.untouched()
    st = planted.victim_dir.stat()
    assert (st.st_uid, st.st_gid) == (0, 0)  # not handed to the node user


@pytest.mark.parametrize("rel", ["logs/stdout.log", "stdout.log"])
def test_the_jvm_stdout_is_never_written_through_a_planted_symlink(
    planted: Planted, rel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`java` is /bin/echo here: it prints its arguments to the stdout file and exits before any CQL marker."""
    monkeypatch.setattr(users, "can_switch_users", lambda: False)  # runs as root: the echo needs no node user
    planted.plant(rel, planted.target)
    with pytest.raises(LabError):
        planted.lab._start(planted.state, planted.state.spec.nodes[0])
    assert planted.untouched()
