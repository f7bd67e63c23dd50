"""`nodetool sjk mx -mg [-all] -b PATTERN -f ATTR`: MBean name lines, each followed by its value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cassandra_recovery.errors import ParseError

_MBEAN = re.compile(r"^[\w.]+:(?:[\w$-]+=[^,=]+,)*[\w$-]+=[^,=]+$")
# "/ip.port", or "host/ip.port" once the JVM has resolved the peer's host name (InetAddress.toString): seen on the
# lab after a node came back, e.g. "Hints_created-127.0.0.4/127.0.0.4.7000".
_HINT_TARGET = re.compile(r"^(?P<host>[^/]*)/(?P<addr>[0-9a-fA-F.:]+?)\.(?P<port>\d+)$")


def parse_sjk_mx(text: str) -> dict[str, str]:
    """MBean object name -> attribute value, in output order."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        name = lines[i]
        if not _MBEAN.match(name) or i + 1 >= len(lines) or _MBEAN.match(lines[i + 1]):
            raise ParseError("nodetool sjk mx", f"expected an MBean name followed by a value at {name!r}", text)
        out[name] = lines[i + 1]
        i += 2
    return out


def mbean_keys(name: str) -> dict[str, str]:
    """Key properties of an ObjectName: 'd:type=A,name=B' -> {'type': 'A', 'name': 'B'}."""
    return dict(part.split("=", 1) for part in name.split(":", 1)[1].split(","))


@dataclass(frozen=True)
class HintCounters:
    """One coordinator's hint counters since its start (they only grow; compare two samples)."""

    total_hints: int
    created: dict[str, int]  # target "address:port" -> hints written for it
    not_stored: dict[str, int]  # target -> hints dropped because it was down past the hint window
    succeeded: int
    failed: int
    timed_out: int
    in_progress: int
    delivered: dict[str, int] = field(default_factory=dict)  # target -> hints delivered to it

    def created_for(self, address: str, port: int = 7000) -> int:
        return self.created.get(f"{address}:{port}", 0)

    def delivered_for(self, address: str, port: int = 7000) -> int:
        """Hints delivered to the target (the count of its `Hint_delays-` histogram: one per delivered hint)."""
        return self.delivered.get(f"{address}:{port}", 0)

    def not_stored_for(self, address: str, port: int = 7000) -> int:
        return self.not_stored.get(f"{address}:{port}", 0)


def _target(suffix: str, text: str) -> str:
    m = _HINT_TARGET.match(suffix)
    if m is None:
        raise ParseError("nodetool sjk mx", f"unexpected hint target {suffix!r}", text)
    return f"{m.group('addr')}:{m.group('port')}"


def hint_counters(text: str) -> HintCounters:
    """From the `name=*Hint*` pattern; a counter that was never registered (no hint yet) reads as 0."""
    values: dict[str, int] = {}
    created: dict[str, int] = {}
    not_stored: dict[str, int] = {}
    delivered: dict[str, int] = {}
    for mbean, raw in parse_sjk_mx(text).items():
        keys = mbean_keys(mbean)
        name = keys.get("name", "")
        try:
            value = int(float(raw))
        except ValueError as e:
            raise ParseError("nodetool sjk mx", f"non-numeric value {raw!r} for {mbean}", text) from e
        # Both name forms of one target may be registered (before and after the name was resolved): they add up.
        if name.startswith("Hints_created-"):
            t = _target(name.removeprefix("Hints_created-"), text)
            created[t] = created.get(t, 0) + value
        elif name.startswith("Hints_not_stored-"):
            t = _target(name.removeprefix("Hints_not_stored-"), text)
            not_stored[t] = not_stored.get(t, 0) + value
        elif name.startswith("Hint_delays-"):
            t = _target(name.removeprefix("Hint_delays-"), text)
            delivered[t] = delivered.get(t, 0) + value
        else:
            values[name] = value
    if "TotalHints" not in values:
        raise ParseError("nodetool sjk mx", "no Storage TotalHints counter in output", text)
    return HintCounters(
        total_hints=values["TotalHints"],
        created=created,
        not_stored=not_stored,
        succeeded=values.get("HintsSucceeded", 0),
        failed=values.get("HintsFailed", 0),
        timed_out=values.get("HintsTimedOut", 0),
        in_progress=values.get("TotalHintsInProgress", 0),
        delivered=delivered,
    )


def dropped_messages(text: str) -> dict[str, int]:
    """Dropped message counts by verb (scope), from the DroppedMessage pattern."""
    out: dict[str, int] = {}
    for mbean, raw in parse_sjk_mx(text).items():
        keys = mbean_keys(mbean)
        if keys.get("type") != "DroppedMessage" or "scope" not in keys:
            raise ParseError("nodetool sjk mx", f"not a DroppedMessage MBean: {mbean}", text)
        out[keys["scope"]] = int(float(raw))
    return out
