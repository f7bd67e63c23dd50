"""Waiting on node log markers after a mark (never fixed sleeps), and quoting logs in errors."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from cassandra_recovery.errors import LabError


def read_node_log(path: Path, offset: int = 0) -> str:
    """A node's log from offset, "" when missing. logs/ is the node user's: never read through a symlink there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    with os.fdopen(fd, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


class LogWatcher:
    """Remembers a position in a node's system.log and waits for a line matching a pattern after it."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.lstat().st_size if path.exists() else 0

    def new_text(self) -> str:
        return read_node_log(self.path, self.offset)

    def wait_for(self, pattern: str, timeout_s: float, alive: Callable[[], bool], what: str) -> str:
        """Line matching pattern, or LabError quoting the log when the process dies or time runs out."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.new_text().splitlines():
                if rx.search(line):
                    return line
            if not alive():
                raise LabError(f"{what}: process exited before '{pattern}'\n{self.quote()}")
            if time.monotonic() > deadline:
                raise LabError(f"{what}: no '{pattern}' after {timeout_s:.0f}s\n{self.quote()}")
            time.sleep(0.25)

    def quote(self, limit: int = 25) -> str:
        """ERROR lines since the mark with the lines that follow them (the exception), else WARN lines,
        else the last lines; plus the tail of stdout, where the JVM reports what it could not log."""
        lines = self.new_text().splitlines()
        picked: list[str] = []
        for i, ln in enumerate(lines):
            if ln.startswith("ERROR"):
                follow = [x for x in lines[i + 1 : i + 4] if not x.startswith(("INFO", "WARN", "DEBUG"))]
                picked += [ln, *follow]
        if not picked:
            picked = [ln for ln in lines if ln.startswith("WARN")] or lines
        out = [f"--- {self.path} ---", *picked[-limit:]]
        stdout = self.path.parent.parent / "stdout.log"  # the node directory's (logs/ is the node user's)
        if stdout.exists():
            tail = stdout.read_text(errors="replace").splitlines()[-10:]
            out += [f"--- {stdout} (tail) ---", *tail]
        return "\n".join(out)
