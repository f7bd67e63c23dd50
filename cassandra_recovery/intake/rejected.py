"""Request bodies whose alerts the inbox refused, kept byte for byte (0600 files) so someone can see why."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class RejectedBodies(Protocol):
    def keep(self, source: str, body: bytes, reason: str) -> str | None:
        """Keep `body` with the reason; its name, or None when the store is full (the newest are dropped, so a
        flood of bad alerts cannot fill the disk)."""
        ...


def default_rejected_dir() -> Path:
    """`$XDG_STATE_HOME/cassandra-recovery/rejected-alerts` (`~/.local/state/...` without it)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cassandra-recovery" / "rejected-alerts"


def _write_private(path: Path, data: bytes) -> None:
    # 0600 from the start: bodies may carry whatever the sender put in its labels.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class DirRejectedBodies:
    """`<source>-<sha256 prefix>.body` (the raw bytes) and `.reason.txt` beside it; the same body is kept once."""

    def __init__(self, directory: Path, max_files: int = 1000) -> None:
        self.directory, self.max_files = directory, max_files

    def keep(self, source: str, body: bytes, reason: str) -> str | None:
        name = f"{source}-{hashlib.sha256(body).hexdigest()[:24]}"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = self.directory / f"{name}.body"
            if not target.exists() and sum(1 for _ in self.directory.glob("*.body")) >= self.max_files:
                log.warning("rejected alert body not kept: %s already holds %d", self.directory, self.max_files)
                return None
            _write_private(target, body)
            _write_private(self.directory / f"{name}.reason.txt", reason.encode("utf-8", "backslashreplace"))
        except OSError as e:
            log.warning("rejected alert body not kept in %s: %s", self.directory, e)
            return None
        return name
