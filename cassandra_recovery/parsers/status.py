"""`nodetool status`: per-datacenter rows of state, address, load, tokens, ownership, host id, rack.

Cassandra 5.0 (tools/nodetool/Status.java) prints one of two tables, the same for every datacenter:
- the usual one, `--  Address  Load  Tokens  Owns  Host ID  Rack`, a token count per node;
- the token-per-node one, `--  Address  Load  Owns  Host ID  Token  Rack`, each node's token instead of a
  count. Status.java picks it when the ring holds no more tokens than there are datacenters (its "vnodes?"
  test compares against the datacenter count), in practice a single-token single node such as
  `lab up --nodes 1`, or one single-token node per datacenter.
In both, Owns reads "Owns (effective)" with a percentage, or "Owns" with "?" and a trailing "Note:" when
effective ownership is meaningless (user keyspaces with different replication and no keyspace given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

_DC = re.compile(r"^Datacenter: (?P<dc>\S+)$")
_STATE = r"^(?P<status>[UD])(?P<state>[NLJM])\s+(?P<address>[0-9a-fA-F.:]+)\s+"
_LOAD = r"(?P<load>\?|[\d.]+ ?(?:[KMGTP]i?B|B|bytes)|n/a)\s+"
_OWNS = r"(?P<owns>\?|[\d.]+%)\s+"
_HOST_ID = r"(?P<host_id>[0-9a-f-]{36})\s+"
_ROW_VNODES = re.compile(_STATE + _LOAD + r"(?P<tokens>\d+)\s+" + _OWNS + _HOST_ID + r"(?P<rack>\S+)$")
# The token is partitioner-specific text: a signed long (Murmur3), a big integer (Random), hex (ByteOrdered).
_ROW_TOKEN_PER_NODE = re.compile(_STATE + _LOAD + _OWNS + _HOST_ID + r"(?P<token>\S+)\s+(?P<rack>\S+)$")
_OWNS_HEADER = r"Owns(?: \(effective\))?"
_HEADERS = {
    re.compile(rf"^--\s+Address\s+Load\s+Tokens\s+{_OWNS_HEADER}\s+Host ID\s+Rack$"): _ROW_VNODES,
    re.compile(rf"^--\s+Address\s+Load\s+{_OWNS_HEADER}\s+Host ID\s+Token\s+Rack$"): _ROW_TOKEN_PER_NODE,
}
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
    token: str | None = None  # the node's one token, printed only in the token-per-node table

    @property
    def code(self) -> str:
        return ("U" if self.up else "D") + self.state


def parse_status(text: str) -> list[StatusRow]:
    rows: list[StatusRow] = []
    dc: str | None = None
    row_re: re.Pattern[str] | None = None  # set by the table header, reset by each datacenter
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        if m := _DC.match(line):
            dc, row_re = m.group("dc"), None
            continue
        if header := next((r for h, r in _HEADERS.items() if h.match(line)), None):
            row_re = header
            continue
        if line.startswith(_SKIP) or set(line) == {"="}:
            continue
        m = row_re.match(line) if row_re is not None else None
        if m is None or dc is None:
            raise ParseError("nodetool status", f"unexpected line {line!r}", text)
        owns = m.group("owns")
        token = m.group("token") if row_re is _ROW_TOKEN_PER_NODE else None
        rows.append(
            StatusRow(
                datacenter=dc,
                address=m.group("address"),
                up=m.group("status") == "U",
                state=m.group("state"),
                load=m.group("load"),
                tokens=1 if token is not None else int(m.group("tokens")),
                owns=None if owns == "?" else float(owns.rstrip("%")),
                host_id=m.group("host_id"),
                rack=m.group("rack"),
                token=token,
            )
        )
    if not rows:
        raise ParseError("nodetool status", "no datacenter table found", text)
    return rows
