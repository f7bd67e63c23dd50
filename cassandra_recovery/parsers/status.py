"""`nodetool status`: per-datacenter rows of state, address, load, tokens, ownership, host id, rack."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

_DC = re.compile(r"^Datacenter: (?P<dc>\S+)$")
_ROW = re.compile(
    r"^(?P<status>[UD])(?P<state>[NLJM])\s+(?P<address>[0-9a-fA-F.:]+)\s+"
    r"(?P<load>\?|[\d.]+ ?(?:[KMGTP]i?B|B|bytes)|n/a)\s+(?P<tokens>\d+)\s+(?P<owns>\?|[\d.]+%)\s+"
    r"(?P<host_id>[0-9a-f-]{36})\s+(?P<rack>\S+)$"
)
_HEADER = re.compile(r"^--\s+Address\s+Load\s+Tokens\s+Owns")
_SKIP = ("=", "Status=", "|/ State=", "Note:", "Datacenter:")


@dataclass(frozen=True)
class StatusRow:
    datacenter: str
    address: str
    up: bool
    state: str  # N(ormal) L(eaving) J(oining) M(oving)
    load: str
    tokens: int
    owns: float | None
    host_id: str
    rack: str

    @property
    def code(self) -> str:
        return ("U" if self.up else "D") + self.state


def parse_status(text: str) -> list[StatusRow]:
    rows: list[StatusRow] = []
    dc: str | None = None
    saw_header = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        if m := _DC.match(line):
            dc = m.group("dc")
            continue
        if _HEADER.match(line):
            saw_header = True
            continue
        if line.startswith(_SKIP) or set(line) == {"="}:
            continue
        m = _ROW.match(line)
        if m is None or dc is None:
            raise ParseError("nodetool status", f"unexpected line {line!r}", text)
        owns = m.group("owns")
        rows.append(
            StatusRow(
                datacenter=dc,
                address=m.group("address"),
                up=m.group("status") == "U",
                state=m.group("state"),
                load=m.group("load"),
                tokens=int(m.group("tokens")),
                owns=None if owns == "?" else float(owns.rstrip("%")),
                host_id=m.group("host_id"),
                rack=m.group("rack"),
            )
        )
    if not saw_header or not rows:
        raise ParseError("nodetool status", "no datacenter table found", text)
    return rows
