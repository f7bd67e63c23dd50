"""Hint commands: `nodetool statushandoff`, `listpendinghints` and `getmaxhintwindow`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cassandra_recovery.errors import ParseError

_STATUS = {"Hinted handoff is running": True, "Hinted handoff is not running": False}
# StatusHandoff.java prints one such line per DC excluded with `disablehintsfordc`.
_DC_DISABLED = re.compile(r"^Data center \S+ is disabled$")
_NO_HINTS = "This node does not have any pending hints"
_HINTS_HEADER = re.compile(r"^Host ID\s+Address\s+Rack\s+DC\s+Status\s+Total files\s+Newest\s+Oldest$")
# Timestamps are "yyyy-MM-dd HH:mm:ss,SSS" in UTC (ListPendingHints.java formats them at zone UTC);
# they contain a blank, so the row is matched as a whole rather than split on whitespace.
_TS = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}"
_HINTS_ROW = re.compile(
    r"^(?P<host_id>[0-9a-fA-F-]{36})\s+(?P<address>\S+)\s+(?P<rack>\S+)\s+(?P<dc>\S+)\s+(?P<status>\S+)\s+"
    rf"(?P<files>\d+)\s+(?P<newest>{_TS})\s+(?P<oldest>{_TS})$"
)
# Address is "ip:port"; an unresolvable host id prints something else (e.g. "null"), kept as is.
_ADDRESS = re.compile(r"^(?P<ip>.+):(?P<port>\d+)$")
_MAX_WINDOW = re.compile(r"^Current max hint window: (?P<ms>\d+) ms$")


@dataclass(frozen=True)
class PendingHints:
    host_id: str
    address: str
    port: int | None
    rack: str
    dc: str
    status: str  # UP, DOWN or Unknown as printed
    total_files: int
    newest: datetime  # UTC
    oldest: datetime  # UTC


def parse_statushandoff(text: str) -> bool:
    """True when the node stores hints for unreachable replicas ("Hinted handoff is running").

    This reports `isHandoffEnabled`, not delivery: after `nodetool pausehandoff` the node still
    prints "Hinted handoff is running" (fixture statushandoff_paused), so a True here does not
    mean stored hints are being delivered. A DC excluded with `disablehintsfordc` is printed on
    its own line; such output is refused rather than summarised as plainly running.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] not in _STATUS:
        raise ParseError("nodetool statushandoff", "no 'Hinted handoff is ...' line", text)
    extra = lines[1:]
    if extra:
        reason = (
            "per-datacenter hint settings are not supported"
            if all(_DC_DISABLED.match(line) for line in extra)
            else f"unexpected line {extra[0]!r}"
        )
        raise ParseError("nodetool statushandoff", reason, text)
    return _STATUS[lines[0]]


def _timestamp(raw: str) -> datetime:
    return datetime.strptime(raw.replace(",", "."), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def parse_listpendinghints(text: str) -> list[PendingHints]:
    command = "nodetool listpendinghints"
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if lines == [_NO_HINTS]:
        return []
    if not lines or not _HINTS_HEADER.match(lines[0]):
        raise ParseError(command, "neither the no-hints message nor the table header", text)
    if len(lines) == 1:
        # The header is only printed when there is at least one row.
        raise ParseError(command, "table header without rows", text)
    rows: list[PendingHints] = []
    for line in lines[1:]:
        m = _HINTS_ROW.match(line)
        if m is None:
            raise ParseError(command, f"unexpected row {line!r}", text)
        am = _ADDRESS.match(m.group("address"))
        rows.append(
            PendingHints(
                host_id=m.group("host_id"),
                address=am.group("ip") if am else m.group("address"),
                port=int(am.group("port")) if am else None,
                rack=m.group("rack"),
                dc=m.group("dc"),
                status=m.group("status"),
                total_files=int(m.group("files")),
                newest=_timestamp(m.group("newest")),
                oldest=_timestamp(m.group("oldest")),
            )
        )
    return rows


def parse_getmaxhintwindow(text: str) -> int:
    """Max hint window in milliseconds."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    m = _MAX_WINDOW.match(lines[0]) if len(lines) == 1 else None
    if m is None:
        raise ParseError("nodetool getmaxhintwindow", "expected 'Current max hint window: N ms'", text)
    return int(m.group("ms"))
