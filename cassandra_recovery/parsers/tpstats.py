"""`nodetool tpstats`: thread pool counters and dropped message counts with queue-latency percentiles."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool tpstats"

_POOL_HEADER = re.compile(r"^Pool Name\s+Active\s+Pending\s+Completed\s+Blocked\s+All time blocked$")
_POOL_ROW = re.compile(r"^(?P<name>\S+)\s+(?P<a>\d+)\s+(?P<p>\d+)\s+(?P<c>\d+)\s+(?P<b>\d+)\s+(?P<atb>\d+)$")
_LATENCY_TITLE = "Latencies waiting in queue (micros) per dropped message types"
# 4.0+ prints percentiles; older releases printed only "Message type  Dropped".
_DROPPED_HEADER = re.compile(r"^Message type\s+Dropped(?P<pct>\s+50%\s+95%\s+99%\s+Max)?$")
# Percentiles come from Java's Double.toString, which switches to "3.615719E7" above 10^7.
_NUM = r"(?:[\d.]+(?:E-?\d+)?|NaN)"
_DROPPED_ROW = re.compile(
    rf"^(?P<name>\S+)\s+(?P<dropped>\d+)(?:\s+(?P<p50>{_NUM})\s+(?P<p95>{_NUM})\s+(?P<p99>{_NUM})\s+(?P<max>{_NUM}))?$"
)
# Verbs whose drop means a replica missed a write. 4.0+ names them *_REQ; 3.x used the bare names.
# Where both appear (the JMX metrics of 5.0 keep the bare name as an alias of the same count) only the
# *_REQ names are summed, so one drop is never counted twice.
MUTATION_VERBS = ("MUTATION_REQ", "COUNTER_MUTATION_REQ")
LEGACY_MUTATION_VERBS = ("MUTATION", "COUNTER_MUTATION")


@dataclass(frozen=True)
class PoolStats:
    active: int
    pending: int
    completed: int
    blocked: int
    all_time_blocked: int


@dataclass(frozen=True)
class DroppedStats:
    dropped: int
    # Queue latency percentiles in microseconds; None when the release does not print them.
    p50_micros: float | None
    p95_micros: float | None
    p99_micros: float | None
    max_micros: float | None


@dataclass(frozen=True)
class TpStats:
    pools: dict[str, PoolStats]
    dropped: dict[str, DroppedStats]

    @property
    def dropped_mutations(self) -> int:
        verbs = MUTATION_VERBS if any(v in self.dropped for v in MUTATION_VERBS) else LEGACY_MUTATION_VERBS
        return sum(self.dropped[v].dropped for v in verbs if v in self.dropped)

    @property
    def total_dropped(self) -> int:
        return sum(d.dropped for d in self.dropped.values())


def _opt(raw: str | None) -> float | None:
    return None if raw is None else float(raw)


def parse_tpstats(text: str) -> TpStats:
    pools: dict[str, PoolStats] = {}
    dropped: dict[str, DroppedStats] = {}
    section: str | None = None
    with_percentiles = False
    for raw in text.splitlines():
        line = raw.strip()  # columns are padded with trailing blanks
        if not line or line == _LATENCY_TITLE:
            continue
        if _POOL_HEADER.match(line):
            section = "pools"
            continue
        if hm := _DROPPED_HEADER.match(line):
            section, with_percentiles = "dropped", hm.group("pct") is not None
            continue
        if section == "pools" and (m := _POOL_ROW.match(line)):
            pools[m.group("name")] = PoolStats(*(int(m.group(g)) for g in ("a", "p", "c", "b", "atb")))
        # A row must have percentiles exactly when its header announced them.
        elif section == "dropped" and (m := _DROPPED_ROW.match(line)) and (m["p50"] is not None) == with_percentiles:
            dropped[m.group("name")] = DroppedStats(
                int(m.group("dropped")),
                _opt(m.group("p50")),
                _opt(m.group("p95")),
                _opt(m.group("p99")),
                _opt(m.group("max")),
            )
        else:
            raise ParseError(COMMAND, f"unexpected line {line!r}", text)
    # Both tables are always printed (every verb is listed even with 0 drops), so an empty one
    # means truncated output.
    if not pools:
        raise ParseError(COMMAND, "no thread pool table", text)
    if not dropped:
        raise ParseError(COMMAND, "no dropped message table", text)
    return TpStats(pools=pools, dropped=dropped)
