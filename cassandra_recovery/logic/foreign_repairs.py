"""Repairs running on a node, and whose they are (pure): this tool's own, or started by anyone else (Reaper, a cron
`nodetool repair`, an operator).

A node takes part in a repair when it coordinates one (`system_views.repairs`), takes part in one
(`repair_participates`), builds a merkle tree for one (`repair_validations`, or a `Validation` task in
`nodetool compactionstats`), or holds sstables of an active incremental session (`nodetool repair_admin list`).
A repair is the tool's own when its id is one the tool learned, or when it repairs exactly the ranges of a segment
the tool runs (a repair's id is only known once it ended); anything else is foreign, and a segment never starts on a
replica in a foreign repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cassandra_recovery.contracts import ForeignRepairDoc
from cassandra_recovery.parsers.compactionstats import CompactionStats
from cassandra_recovery.parsers.repair_admin import ConsistentSession, address

VIEWS = ("repairs", "repair_participates", "repair_validations")


@dataclass(frozen=True)
class RunningRepair:
    id: str  # the repair's (parent) id; a compactionstats validation only has its task's id
    seen_on: str  # the node it was observed on
    source: str  # where: a system_views table, "repair_admin" or "compactionstats"
    kind: str  # full, incremental, preview, validation (a merkle tree seen without its repair)
    coordinator: str | None = None
    keyspace: str | None = None
    ranges: tuple[str, ...] = ()
    started_at: datetime | None = None
    participants: tuple[str, ...] = ()

    @property
    def nodes(self) -> frozenset[str]:
        """Every node this repair keeps busy, as far as the observation tells."""
        return frozenset({self.seen_on, *self.participants, *([self.coordinator] if self.coordinator else [])})

    def describe(self) -> str:
        """One line naming it: kind, id, coordinator, keyspace, ranges, start, where it was seen."""
        parts = [f"{self.kind} repair {self.id}"]
        parts += [f"coordinator {self.coordinator}"] if self.coordinator else []
        parts += [f"keyspace {self.keyspace}"] if self.keyspace else []
        if self.ranges:
            shown = ", ".join(self.ranges[:3]) + (f" and {len(self.ranges) - 3} more" if len(self.ranges) > 3 else "")
            parts.append(f"ranges {shown}")
        parts += [f"started {self.started_at.isoformat(timespec='seconds')}"] if self.started_at else []
        return ", ".join(parts) + f" (seen on {self.seen_on} in {self.source})"

    def as_doc(self) -> ForeignRepairDoc:
        started = self.started_at.isoformat() if self.started_at else None
        return {
            "id": self.id,
            "seen_on": self.seen_on,
            "source": self.source,
            "kind": self.kind,
            "coordinator": self.coordinator,
            "keyspace": self.keyspace,
            "ranges": list(self.ranges),
            "started_at": started,
            "participants": list(self.participants),
            "described": self.describe(),
        }


@dataclass(frozen=True)
class NodeRepairs:
    """What one node showed; `error` when it could not be read (unreachable, unknown output)."""

    node: str
    running: tuple[RunningRepair, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class OwnRepairs:
    """What identifies this tool's repairs: ids it learned, and the (keyspace, "(start,end]") of its segments."""

    ids: frozenset[str] = frozenset()
    ranges: frozenset[tuple[str, str]] = frozenset()

    def owns(self, r: RunningRepair) -> bool:
        if r.id in self.ids:
            return True
        return bool(r.keyspace and r.ranges) and {(str(r.keyspace), rg) for rg in r.ranges} <= self.ranges


class Busy(StrEnum):
    FREE = "free"
    OURS = "ours"  # only this tool's repairs keep a replica busy
    FOREIGN = "foreign"  # a repair started by someone else takes part: never collide with it


@dataclass(frozen=True)
class ReplicasVerdict:
    busy: Busy
    nodes: tuple[str, ...]  # the replicas found busy
    foreign: tuple[RunningRepair, ...] = field(default=())
    unread: tuple[str, ...] = ()  # replicas that could not be observed (the repair reports unreachable ones)

    def reason(self) -> str:
        if self.busy is Busy.FREE:
            return "replicas free"
        if self.busy is Busy.OURS:
            return f"replicas {list(self.nodes)} busy with this tool's own repair"
        named = "; ".join(r.describe() for r in self.foreign)
        return f"replicas {list(self.nodes)} take part in a repair started outside this tool: {named}"


def _when(value: Any) -> datetime | None:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(when, datetime):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, Iterable) and not isinstance(value, str) else ()


def from_views(node: str, views: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[RunningRepair]:
    """The node's repairs not completed yet, from its `system_views` repair tables (rows as the driver gives them,
    or as JSON): coordinated here, taken part in, or validated here."""
    out: list[RunningRepair] = []
    for r in views.get("repairs", ()):
        if r.get("completed"):
            continue
        preview = str(r.get("options_preview_kind") or "NONE") != "NONE"
        kind = (
            "preview" if preview else str(r.get("type") or ("incremental" if r.get("options_incremental") else "full"))
        )
        began = _when(r.get("state_init_timestamp"))
        participants = tuple(address(p) for p in _strs(r.get("participants")))
        out.append(RunningRepair(str(r["id"]), node, "system_views.repairs", kind, node, r.get("keyspace_name"),
                                 _strs(r.get("options_ranges")), began, participants))  # fmt: skip
    for r in views.get("repair_participates", ()):
        if r.get("completed"):
            continue
        preview = str(r.get("preview_kind") or "NONE") != "NONE"
        kind = "preview" if preview else "incremental" if r.get("incremental") else "full"
        tables = _strs(r.get("tables"))
        keyspace = tables[0].split(".", 1)[0] if tables else None
        out.append(RunningRepair(str(r["id"]), node, "system_views.repair_participates", kind,
                                 address(str(r.get("initiator") or "")) or None, keyspace, _strs(r.get("ranges")),
                                 _when(r.get("state_init_timestamp"))))  # fmt: skip
    for r in views.get("repair_validations", ()):
        if r.get("completed"):
            continue
        out.append(RunningRepair(str(r.get("repair_id") or r["id"]), node, "system_views.repair_validations",
                                 "validation", address(str(r.get("initiator") or "")) or None, r.get("keyspace_name"),
                                 _strs(r.get("ranges")), _when(r.get("state_init_timestamp"))))  # fmt: skip
    return out


def from_repair_admin(node: str, sessions: Iterable[ConsistentSession]) -> list[RunningRepair]:
    """Active incremental sessions the node takes part in (their sstables are held until the session ends)."""
    return [
        RunningRepair(s.id, node, "repair_admin", "incremental", s.coordinator, participants=s.participants)
        for s in sessions
        if s.active
    ]


def from_compactionstats(node: str, stats: CompactionStats) -> list[RunningRepair]:
    """Merkle trees being built: some repair takes part here, even when no repair table names it."""
    return [RunningRepair(t.id, node, "compactionstats", "validation", keyspace=t.keyspace) for t in stats.validations]


def merged(running: Iterable[RunningRepair]) -> list[RunningRepair]:
    """One entry per repair id: the most telling observation (the coordinator's row names the most)."""
    rank = {"system_views.repairs": 0, "system_views.repair_participates": 1, "system_views.repair_validations": 2}
    best: dict[str, RunningRepair] = {}
    nodes: dict[str, set[str]] = {}
    for r in running:
        nodes.setdefault(r.id, set()).update(r.nodes)
        if r.id not in best or rank.get(r.source, 9) < rank.get(best[r.id].source, 9):
            best[r.id] = r
    out = []
    for rid, r in best.items():
        extra = tuple(sorted(nodes[rid] - {r.seen_on, *r.participants, r.coordinator or ""}))
        out.append(replace(r, participants=r.participants + extra))
    return out


def _explained(r: RunningRepair, named: Sequence[RunningRepair]) -> bool:
    """A compactionstats validation on a node where a repair table already names a running repair of the same
    keyspace is that repair's: not counted twice."""
    return r.source == "compactionstats" and any(
        o.source != "compactionstats" and r.seen_on in o.nodes and o.keyspace in (None, r.keyspace) for o in named
    )


def replicas_verdict(observed: Sequence[NodeRepairs], replicas: Sequence[str], own: OwnRepairs) -> ReplicasVerdict:
    """Free, busy with this tool's repairs only, or busy with a foreign repair (named). Replicas that could not be
    read do not make the verdict busy: the repair itself fails on an unreachable replica and says so."""
    wanted = set(replicas)
    named = [r for n in observed for r in n.running if r.source != "compactionstats"]
    running = merged(r for n in observed for r in n.running if not _explained(r, named))
    touching = [r for r in running if r.nodes & wanted]
    unread = tuple(sorted(n.node for n in observed if n.error is not None and n.node in wanted))
    if not touching:
        return ReplicasVerdict(Busy.FREE, (), unread=unread)
    busy_nodes = tuple(sorted(set().union(*(r.nodes for r in touching)) & wanted))
    foreign = tuple(r for r in touching if not own.owns(r))
    return ReplicasVerdict(Busy.FOREIGN if foreign else Busy.OURS, busy_nodes, foreign, unread)


def foreign_anywhere(observed: Sequence[NodeRepairs], own: OwnRepairs = OwnRepairs()) -> list[RunningRepair]:
    """Every foreign repair the observed nodes show (the assessment names them all)."""
    named = [r for n in observed for r in n.running if r.source != "compactionstats"]
    return [r for r in merged(r for n in observed for r in n.running if not _explained(r, named)) if not own.owns(r)]
