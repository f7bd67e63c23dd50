"""`nodetool netstats`: operation mode, active streams, read repair counters and messaging pools."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool netstats"

_MODE = re.compile(r"^Mode: (?P<mode>[A-Z_]+)$")
_NO_STREAMS = "Not sending any streams."
# One "<operation description> <plan uuid>" line per stream plan (e.g. "Repair 4fa3...", "Bootstrap ..."),
# followed by indented peer / file lines. Not yet covered by a fixture: layout from NetStats.java.
_STREAM_PLAN = re.compile(r"^(?P<operation>\S.*) (?P<plan_id>[0-9a-fA-F]{8}-[0-9a-fA-F-]{27})$")
_READ_REPAIR = "Read Repair Statistics:"
_RR_LINE = re.compile(r"^(?P<key>Attempted|Mismatch \(Blocking\)|Mismatch \(Background\)): (?P<n>\d+)$")
_POOL_HEADER = re.compile(r"^Pool Name\s+Active\s+Pending\s+Completed\s+Dropped$")
# Pool names contain blanks ("Large messages"); Active is always n/a for the messaging pools.
_POOL_ROW = re.compile(
    r"^(?P<name>\S.*?)\s+(?P<active>n/a|\d+)\s+(?P<pending>\d+)\s+(?P<completed>\d+)\s+"
    r"(?P<dropped>\d+)$"
)


@dataclass(frozen=True)
class StreamPlan:
    operation: str
    plan_id: str
    details: list[str]  # the indented peer and progress lines, stripped


@dataclass(frozen=True)
class ReadRepairStats:
    attempted: int
    mismatch_blocking: int
    mismatch_background: int


@dataclass(frozen=True)
class MessagePool:
    active: int | None  # None for "n/a"
    pending: int
    completed: int
    dropped: int


@dataclass(frozen=True)
class NetStats:
    mode: str
    streams: list[StreamPlan]
    read_repair: ReadRepairStats | None  # None only while the node is STARTING
    pools: dict[str, MessagePool]  # "Large messages", "Small messages", "Gossip messages"

    @property
    def streams_active(self) -> bool:
        return bool(self.streams)


def parse_netstats(text: str) -> NetStats:
    mode: str | None = None
    no_streams = False
    streams: list[StreamPlan] = []
    rr: dict[str, int] = {}
    in_rr = False
    pool_header = False
    pools: dict[str, MessagePool] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        stripped = line.strip()
        if mode is None:
            if not (m := _MODE.match(line)):
                raise ParseError(COMMAND, f"expected 'Mode: ...' first, got {line!r}", text)
            mode = m.group("mode")
        elif line == _NO_STREAMS and not streams and not in_rr:
            no_streams = True
        elif line == _READ_REPAIR and not in_rr:
            in_rr = True
        elif in_rr and (m := _RR_LINE.match(line)):
            rr[m.group("key")] = int(m.group("n"))
        elif _POOL_HEADER.match(line):
            pool_header = True
        elif pool_header and (m := _POOL_ROW.match(line)):
            active = m.group("active")
            pools[m.group("name")] = MessagePool(
                None if active == "n/a" else int(active),
                int(m.group("pending")),
                int(m.group("completed")),
                int(m.group("dropped")),
            )
        elif not in_rr and not no_streams and (m := _STREAM_PLAN.match(line)):
            streams.append(StreamPlan(m.group("operation"), m.group("plan_id"), []))
        elif not in_rr and streams and raw[0].isspace():
            streams[-1].details.append(stripped)
        else:
            raise ParseError(COMMAND, f"unexpected line {line!r}", text)

    if mode is None:
        raise ParseError(COMMAND, "empty output", text)
    if not no_streams and not streams:
        raise ParseError(COMMAND, "neither 'Not sending any streams.' nor a stream plan", text)
    # NetStats.java skips read repair and pools while the node is starting; otherwise both must be there.
    if not in_rr and not pool_header and mode == "STARTING":
        return NetStats(mode=mode, streams=streams, read_repair=None, pools={})
    if len(rr) != 3:
        raise ParseError(COMMAND, "read repair statistics missing or incomplete", text)
    if not pools:
        raise ParseError(COMMAND, "messaging pool table missing", text)
    read_repair = ReadRepairStats(rr["Attempted"], rr["Mismatch (Blocking)"], rr["Mismatch (Background)"])
    return NetStats(mode=mode, streams=streams, read_repair=read_repair, pools=pools)
