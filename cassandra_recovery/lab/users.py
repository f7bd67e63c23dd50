"""One unprivileged system user per lab node (Cassandra should not run as root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

from cassandra_recovery.clients.child_env import child_env
from cassandra_recovery.errors import CommandError, ToolMissingError


def can_switch_users() -> bool:
    return os.geteuid() == 0


def ensure_user(name: str) -> tuple[int, int]:
    """Create the system user (and its group) when missing; returns (uid, gid)."""
    try:
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    if not os.path.exists(useradd):
        raise ToolMissingError("useradd is missing; install it with: apt-get install -y passwd")
    argv = [
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        name,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=child_env())
    if proc.returncode not in (0, 9):  # 9: created concurrently by another lab command
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid
