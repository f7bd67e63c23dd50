"""A node's directory, written by root without ever following a path a node user controls.

The node directory and its conf/ are the lab's (root's, 0755, files 0644): the node JVM only reads them, so a
node user cannot plant a symlink where the lab writes. Only the directories Cassandra writes in are the node
user's, and the lab never writes inside them. Every step opens one component relative to the verified
directory above it with O_NOFOLLOW; files are written under a fresh name and renamed into place, which replaces
whatever entry was there (a symlink, a hard link) instead of writing through it."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cassandra_recovery.errors import LabError

# Where Cassandra itself writes (yaml directories, logs, the pid file): the node user's.
NODE_WRITABLE = ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs", "run")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def me() -> Owner:
    return Owner(os.geteuid(), os.getegid())


def _refuse(path: Path, why: str) -> LabError:
    return LabError(f"refusing to write through {path}: {why} (remove it; the lab recreates it)")


def open_base(base: Path) -> int:
    """fd of the lab directory: it must be ours and writable by nobody else."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        os.close(fd)
        raise _refuse(base, f"owned by uid {st.st_uid} with mode {stat.filemode(st.st_mode)}, not ours alone")
    return fd


def open_dir(parent_fd: int, parent: Path, name: str, owner: Owner, mode: int = 0o755) -> int:
    """fd of directory `name` under the parent (created when missing), never through a symlink, then made the
    owner's with `mode`. fchown/fchmod act on the opened directory itself, whatever the name points at later."""
    path = parent / name
    try:
        os.mkdir(name, mode, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refuse(path, "it is a symlink or not a directory") from e
        raise
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
        os.fchown(fd, owner.uid, owner.gid)
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)
    return fd


def write_file(
    dir_fd: int, directory: Path, name: str, text: str, mode: int = 0o644, owner: Owner | None = None
) -> None:
    """Write `name` under a fresh name (O_EXCL, O_NOFOLLOW) and rename it into place (atomic; never follows)."""
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            if owner is not None:
                os.fchown(f.fileno(), owner.uid, owner.gid)
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except IsADirectoryError as e:
        raise _refuse(directory / name, "it is a directory") from e
    finally:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


def open_append(dir_fd: int, directory: Path, name: str) -> int:
    """A log file of ours to append to: never a symlink, a hard link, a FIFO or someone else's file."""
    path = directory / name
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _refuse(path, "it is a symlink") from e
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
        os.close(fd)
        raise _refuse(path, "not a regular file of ours with one link")
    return fd


@dataclass(frozen=True)
class NodeFiles:
    """What goes into one node's directory: conf files (name -> text, 0644, root's) and secret ones (name ->
    text, 0400, the node user's: readable by the node JVM alone)."""

    conf: Mapping[str, str]
    secret: Mapping[str, str]


def prepare_node_dir(base: Path, name: str, files: NodeFiles, node_owner: Owner) -> Path:
    """Create or take over base/nodes/<name>: the directory and conf/ ours, the NODE_WRITABLE ones the node's.
    A directory left by an older lab that a node user owned is taken back; a symlink anywhere is refused."""
    opened: list[int] = []
    try:
        opened.append(open_base(base))
        nodes = base / "nodes"
        opened.append(open_dir(opened[-1], base, "nodes", me()))
        node_dir = nodes / name
        node_fd = open_dir(opened[-1], nodes, name, me())
        opened.append(node_fd)
        conf_fd = open_dir(node_fd, node_dir, "conf", me())
        opened.append(conf_fd)
        for fname, text in files.conf.items():
            write_file(conf_fd, node_dir / "conf", fname, text)
        for fname, text in files.secret.items():
            write_file(conf_fd, node_dir / "conf", fname, text, mode=0o400, owner=node_owner)
        for sub in NODE_WRITABLE:
            opened.append(open_dir(node_fd, node_dir, sub, node_owner))
        return node_dir
    finally:
        for fd in opened:
            os.close(fd)


def open_node_stdout(base: Path, name: str) -> int:
    """The node JVM's stdout file, in the node directory (ours): an fd to hand to the child."""
    node_dir = base / "nodes" / name
    fd = os.open(node_dir, _DIR_FLAGS)
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            raise _refuse(node_dir, "not ours")
        return open_append(fd, node_dir, "stdout.log")
    finally:
        os.close(fd)
