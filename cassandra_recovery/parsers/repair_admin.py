"""`nodetool repair_admin list [--all]`: the consistent (incremental) repair sessions a node takes part in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool repair_admin list"

_NONE = "no sessions"
_COLUMNS = ("id", "state", "last activity", "coordinator", "participants")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SECONDS = re.compile(r"^(?P<s>\d+) \(s\)$")
# ConsistentSession.State: a session still holding sstables in one of these takes part in a repair now.
ACTIVE_STATES = frozenset({"PREPARING", "PREPARED", "REPAIRING", "FINALIZE_PROMISED"})


@dataclass(frozen=True)
class ConsistentSession:
    id: str
    state: str
    last_activity_s: int
    coordinator: str  # address without the leading "/" and the port
    participants: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def address(endpoint: str) -> str:
    """ "/127.0.0.3:7000" -> "127.0.0.3" (repair tables and nodetool print endpoints that way)."""
    return endpoint.strip().lstrip("/").rsplit(":", 1)[0]


def parse_repair_admin_list(text: str) -> list[ConsistentSession]:
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if lines == [_NONE]:
        return []
    if not lines:
        raise ParseError(COMMAND, "empty output", text)
    header = [c.strip() for c in lines[0].split("|")]
    if tuple(header[: len(_COLUMNS)]) != _COLUMNS:
        raise ParseError(COMMAND, f"unexpected header {lines[0]!r}", text)
    out = []
    for line in lines[1:]:
        cells = dict(zip(header, (c.strip() for c in line.split("|")), strict=False))
        seconds = _SECONDS.match(cells.get("last activity", ""))
        if not _UUID.match(cells.get("id", "")) or seconds is None or not cells.get("state"):
            raise ParseError(COMMAND, f"unexpected session line {line!r}", text)
        participants = tuple(p.strip() for p in cells.get("participants", "").split(",") if p.strip())
        out.append(
            ConsistentSession(
                cells["id"], cells["state"], int(seconds.group("s")), address(cells["coordinator"]), participants
            )
        )
    return out
