"""`nodetool compactionstats`: pending tasks and the active ones (a repair's validations run there)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool compactionstats"

_PENDING = re.compile(r"^pending tasks\s+(?P<n>\d+)\s*$")
_ACTIVE_HEADER = re.compile(r"^id\s+compaction type\s+keyspace\s+table\s+completed\s+total\s+unit\s+progress\s*$")
# The type may hold blanks ("Anticompaction after repair"); keyspace and table never do.
_ACTIVE_ROW = re.compile(
    r"^(?P<id>[0-9a-f-]{36})\s+(?P<kind>\S.*?)\s+(?P<keyspace>\S+)\s+(?P<table>\S+)\s+(?P<completed>\d+)\s+"
    r"(?P<total>\d+)\s+(?P<unit>\S+)\s+(?P<progress>[\d.]+)%\s*$"
)
_REMAINING = re.compile(r"^active compaction remaining time\s+\S+\s*$")


@dataclass(frozen=True)
class ActiveTask:
    id: str  # the compaction task's id (not a repair's)
    kind: str  # Validation, Compaction, Anticompaction after repair, ...
    keyspace: str
    table: str
    progress_pct: float


@dataclass(frozen=True)
class CompactionStats:
    pending: int
    active: tuple[ActiveTask, ...]

    @property
    def validations(self) -> tuple[ActiveTask, ...]:
        """Merkle-tree builds: this node takes part in a repair now (whoever started it)."""
        return tuple(t for t in self.active if t.kind == "Validation")


def parse_compactionstats(text: str) -> CompactionStats:
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    pending = next((int(m.group("n")) for ln in lines if (m := _PENDING.match(ln))), None)
    if pending is None:
        raise ParseError(COMMAND, "no 'pending tasks' line", text)
    start = next((i for i, ln in enumerate(lines) if _ACTIVE_HEADER.match(ln)), None)
    active: list[ActiveTask] = []
    for line in lines[start + 1 :] if start is not None else ():
        if _REMAINING.match(line):
            break
        m = _ACTIVE_ROW.match(line)
        if m is None:
            raise ParseError(COMMAND, f"unexpected active task line {line!r}", text)
        active.append(ActiveTask(m["id"], m["kind"], m["keyspace"], m["table"], float(m["progress"])))
    return CompactionStats(pending, tuple(active))
