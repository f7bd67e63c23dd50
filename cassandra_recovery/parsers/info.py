"""`nodetool info`: one node's host id, gossip/native state, load, uptime, heap, location and tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool info"

# Keys are left-padded to 23 columns, except "Native Transport active" which fills them, so
# the blank before ':' is optional; values may themselves contain ':' ("overflow size: 0 bytes").
_LINE = re.compile(r"^(?P<key>[A-Za-z][^:]*?)\s*: (?P<value>.*)$")
_HEAP = re.compile(r"^(?P<used>[\d.]+) / (?P<max>[\d.]+)$")
_PERCENT = re.compile(r"^(?P<pct>[\d.]+|NaN)%$")
_TOKEN = re.compile(r"^-?\d+$")
# Nodes with several vnodes print one elided line unless run with -T/--tokens.
_ELIDED = re.compile(r"^\(invoke with -T/--tokens to see all (?P<n>\d+) tokens\)$")
# Printed by Info.java when the node has not joined the ring; not yet covered by a fixture.
_NOT_JOINED = "(node is not joined to the cluster)"
_REQUIRED = (
    "ID",
    "Gossip active",
    "Native Transport active",
    "Load",
    "Uptime (seconds)",
    "Heap Memory (MB)",
    "Data Center",
    "Rack",
    "Exceptions",
    "Percent Repaired",
    "Token",
)


@dataclass(frozen=True)
class NodeInfo:
    host_id: str
    gossip_active: bool
    native_transport_active: bool
    load: str  # as printed, e.g. "265.28 KiB"
    uptime_seconds: int
    heap_used_mb: float
    heap_max_mb: float
    datacenter: str
    rack: str
    exceptions: int
    percent_repaired: float  # NaN when Cassandra prints NaN%
    tokens: list[int]  # every token printed; empty when elided or not joined
    token_count: int  # from the elision message when tokens are not listed
    raw: dict[str, str]  # every key -> its first value, as printed

    @property
    def tokens_elided(self) -> bool:
        return len(self.tokens) < self.token_count


def _bool(key: str, raw: dict[str, str], text: str) -> bool:
    value = raw[key]
    if value not in ("true", "false"):
        raise ParseError(COMMAND, f"{key} is {value!r}, expected true/false", text)
    return value == "true"


def _int(key: str, raw: dict[str, str], text: str) -> int:
    value = raw[key]
    if not value.isdigit():
        raise ParseError(COMMAND, f"{key} is {value!r}, expected an integer", text)
    return int(value)


def parse_info(text: str) -> NodeInfo:
    raw: dict[str, str] = {}
    tokens: list[int] = []
    token_count: int | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LINE.match(line.rstrip())
        if m is None:
            raise ParseError(COMMAND, f"unexpected line {line!r}", text)
        key, value = m.group("key"), m.group("value").strip()
        raw.setdefault(key, value)
        if key != "Token":
            continue
        # With -T (or a single token) the Token line repeats, one token per line.
        if _TOKEN.match(value):
            tokens.append(int(value))
        elif em := _ELIDED.match(value):
            token_count = int(em.group("n"))
        elif value == _NOT_JOINED:
            token_count = 0
        else:
            raise ParseError(COMMAND, f"unexpected Token value {value!r}", text)

    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ParseError(COMMAND, f"missing {', '.join(missing)}", text)
    heap = _HEAP.match(raw["Heap Memory (MB)"])
    if heap is None:
        raise ParseError(COMMAND, f"unexpected heap value {raw['Heap Memory (MB)']!r}", text)
    pct = _PERCENT.match(raw["Percent Repaired"])
    if pct is None:
        raise ParseError(COMMAND, f"unexpected Percent Repaired {raw['Percent Repaired']!r}", text)
    return NodeInfo(
        host_id=raw["ID"],
        gossip_active=_bool("Gossip active", raw, text),
        native_transport_active=_bool("Native Transport active", raw, text),
        load=raw["Load"],
        uptime_seconds=_int("Uptime (seconds)", raw, text),
        heap_used_mb=float(heap.group("used")),
        heap_max_mb=float(heap.group("max")),
        datacenter=raw["Data Center"],
        rack=raw["Rack"],
        exceptions=_int("Exceptions", raw, text),
        percent_repaired=float(pct.group("pct")),
        tokens=tokens,
        token_count=len(tokens) if token_count is None else token_count,
        raw=raw,
    )
