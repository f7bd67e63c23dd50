"""Assessment decisions (pure): what failed, what clients lose, and whether to wait for hints, repair or replace.

Every input is an observation the caller made (times included: `now` is passed in); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import cast

from cassandra_recovery.contracts import PlanDoc
from cassandra_recovery.logic.replication import ConsistencyLevel as ConsistencyLevel  # re-exported
from cassandra_recovery.logic.replication import Replication, TokenRange, ranges_replicated_by, rf_by_dc, token_ranges
from cassandra_recovery.logic.replication import Requirement as Requirement
from cassandra_recovery.logic.replication import ranges_at_risk as ranges_at_risk
from cassandra_recovery.logic.replication import required as required
from cassandra_recovery.logic.schema_agreement import UNREACHABLE as UNREACHABLE  # re-exported
from cassandra_recovery.logic.schema_agreement import SchemaAgreement, schema_agreement


class NodeFailureKind(StrEnum):
    NODE_FAILURE = "node_failure"
    PARTITION = "partition"
    HUNG = "hung"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Classification:
    node: str
    kind: NodeFailureKind
    reason: str


def client_error_kind(error: str | None) -> str:
    """'refused', 'timeout', 'other' or 'none', from the driver's error text."""
    text = (error or "").lower()
    if not text:
        return "none"
    if "refused" in text or "errno 111" in text:
        return "refused"
    if "timed out" in text or "timeout" in text or "errno 110" in text:
        return "timeout"
    return "other"


def classify(
    node: str,
    client_reachable: bool,
    client_error: str | None,
    peers_seeing_down: int,
    peers_total: int,
    jmx_answers: bool | None,
) -> Classification:
    """What kind of failure the evidence points to (jmx_answers None: JMX was not probed).

    - partition: alive (JMX answers or the client reaches it) but some peer sees it down or the client cannot
      reach it;
    - node_failure: the client cannot reach it, every peer sees it down and JMX does not answer, the client error
      not being a timeout;
    - hung: the same but the client timed out: a frozen process (stop-the-world GC, SIGSTOP, disk stall) that
      holds its sockets open without answering; a host or network that drops packets looks the same;
    - unknown: anything else, the reason saying what is missing or contradictory.

    Connection refused means the host answered and nothing listens on the port: the process is gone, or alive
    with its native transport off (`nodetool disablebinary`, still starting); JMX answering tells these apart.
    A timeout means nothing answered at all: a hung process, a host that is down, or a network that drops traffic.
    """
    if not 0 <= peers_seeing_down <= peers_total:
        raise ValueError(f"peers_seeing_down={peers_seeing_down} must be within 0..peers_total={peers_total}")
    err = "none" if client_reachable else client_error_kind(client_error)
    peers = f"{peers_seeing_down} of {peers_total} peers see it down"
    client = "the client reaches it" if client_reachable else f"the client cannot reach it ({err}: {client_error})"
    if client_reachable or jmx_answers:
        alive = "the client reaches it" if client_reachable else "JMX answers"
        if peers_seeing_down == 0 and client_reachable:
            jmx = "; JMX does not answer" if jmx_answers is False else ""
            return Classification(node, NodeFailureKind.UNKNOWN, f"no failure evidence: {client}, {peers}{jmx}")
        hint = "; refused with JMX up: native transport off" if err == "refused" else ""
        why = f"alive ({alive}) but cut off: {client}, {peers}{hint}"
        return Classification(node, NodeFailureKind.PARTITION, why)
    if jmx_answers is None:
        why = f"JMX not probed, so alive cannot be told from dead: {client}, {peers}"
        return Classification(node, NodeFailureKind.UNKNOWN, why)
    if peers_total == 0 or peers_seeing_down < peers_total:
        why = (
            f"{client}, JMX does not answer, but only {peers}: it may have just failed (gossip convicts after "
            "some seconds) or this side may be cut off from it; observe again"
        )
        return Classification(node, NodeFailureKind.UNKNOWN, why)
    if err == "timeout":
        why = f"{client}, {peers}, JMX does not answer: a frozen process (or a host/network dropping traffic)"
        return Classification(node, NodeFailureKind.HUNG, why)
    why = f"{client}, {peers}, JMX does not answer: the process (or host) is gone"
    return Classification(node, NodeFailureKind.NODE_FAILURE, why)


@dataclass(frozen=True)
class HintDecision:
    trust_hints: bool
    reasons: list[str]


def hint_decision(
    now: datetime,
    outage_started_at: datetime,
    max_hint_window_s: float,
    not_stored_grew: bool | None,
    coordinator_restarted: bool | None,
    hints_over_size_limit: bool | None,
) -> HintDecision:
    """Whether hint replay alone will bring a node back in sync; None inputs were not observed and count against.

    Hints are complete only if no coordinator dropped one for the node (its not_stored counter did not grow), none
    went over max_hints_size_per_host, no coordinator restarted since the outage began (a crash loses the hints
    still buffered in memory) and the outage is shorter than max_hint_window (coordinators stop hinting after it).
    """
    elapsed = (now - outage_started_at).total_seconds()
    checks = [
        (elapsed < max_hint_window_s, f"outage {elapsed:.0f} s vs max_hint_window {max_hint_window_s:.0f} s"),
        (not_stored_grew is False, _seen(not_stored_grew, "hints not stored (dropped) for the node")),
        (coordinator_restarted is False, _seen(coordinator_restarted, "a coordinator restarted since the outage")),
        (hints_over_size_limit is False, _seen(hints_over_size_limit, "hints over max_hints_size_per_host")),
    ]
    failed = [f"hints incomplete: {why}" for ok, why in checks if not ok]
    if failed:
        return HintDecision(False, failed)
    return HintDecision(True, [f"hints complete: {why}" for _, why in checks])


def _seen(flag: bool | None, what: str) -> str:
    return f"{what}: {'not observed' if flag is None else 'yes' if flag else 'no'}"


def gc_grace_breached(now: datetime, down_since: datetime, min_gc_grace_s: float) -> bool:
    """True once the node has been down for min_gc_grace_s or longer.

    From then on tombstones it missed may have been purged on its peers, so its copies of deleted data could come
    back: it must be wiped and replaced, not repaired. The boundary counts as breached because deletion times are
    whole seconds: a tombstone written just after down_since can be purgeable exactly gc_grace later.
    """
    return (now - down_since).total_seconds() >= min_gc_grace_s


class PlanAction(StrEnum):
    WAIT_FOR_HINTS = "wait_for_hints"
    REPAIR = "repair"
    WIPE_AND_REPLACE = "wipe_and_replace"
    ESCALATE = "escalate"
    NO_ACTION = "no_action"  # a known partition or maintenance: reported only


@dataclass(frozen=True)
class NodeObservation:
    """What was seen of one node; nodes reachable from the client and seen up by every peer are not down."""

    address: str
    client_reachable: bool
    client_error: str | None
    peers_seeing_down: int
    peers_total: int
    jmx_answers: bool | None
    down_since: datetime | None = None  # when the outage began; None: unknown
    not_stored_grew: bool | None = None  # any coordinator's hints-not-stored count for this node grew
    hints_over_size_limit: bool | None = None  # a coordinator holds more than max_hints_size_per_host for it
    returned: bool = False  # reported down by this incident's trigger, up again by the time of assessment
    restarted: bool | None = None  # its process started after the outage began (gossip generation); None: unknown
    back_since: datetime | None = None  # seen back up after being down; None: not known to have just returned


@dataclass(frozen=True)
class AppImpact:
    breaker_state: str | None = None
    fallback_share: float | None = None  # share of reads served by the fallback (e.g. PostgreSQL)
    queue_age_s: float | None = None  # age of the oldest write waiting to reach Cassandra


@dataclass(frozen=True)
class AssessmentInput:
    now: datetime
    ring: Sequence[tuple[int, str, str, str]]  # (token, address, datacenter, rack), every token of every node
    keyspaces: Mapping[str, Replication]  # the keyspaces to assess (LocalStrategy ones left out)
    local_dc: str
    nodes: Sequence[NodeObservation]
    schema_versions: Mapping[str, Sequence[str]]  # describecluster: version (or UNREACHABLE) -> addresses
    max_hint_window_s: float
    min_gc_grace_s: float  # smallest gc_grace_seconds of the assessed tables
    coordinator_restarted: bool | None  # any node restarted since the earliest outage began
    known_condition: str | None = None  # maintenance window, silence or known partition covering the cluster now
    commitlog_periodic: bool | None = None  # commitlog_sync periodic (the default): a crash loses acknowledged writes
    app: AppImpact = AppImpact()
    max_queue_age_s: float = 300.0
    schema_settle_s: float = 60.0  # a node back for less than this may still differ in schema version


def live_schema_agreement(inp: AssessmentInput) -> SchemaAgreement:
    """Schema versions of the nodes that are up and settled: a down node's version does not count."""
    down = {o.address for o in inp.nodes if not o.client_reachable or o.peers_seeing_down > 0}
    back = {o.address: o.back_since for o in inp.nodes if o.back_since is not None}
    return schema_agreement(inp.schema_versions, down, back, inp.now, inp.schema_settle_s)


def with_jmx(inp: AssessmentInput, answers: Mapping[str, bool | None]) -> AssessmentInput:
    """The input with whether each node's JMX answers (by address), checked apart from the other reads: the check
    on a hung node takes its whole timeout, so it runs beside them."""
    nodes = tuple(replace(n, jmx_answers=answers[n.address]) if n.address in answers else n for n in inp.nodes)
    return replace(inp, nodes=nodes)


@dataclass(frozen=True)
class RepairScope:
    keyspace: str
    ranges: list[TokenRange]


@dataclass(frozen=True)
class KeyspaceImpact:
    ranges: int
    unavailable: dict[ConsistencyLevel, int]  # ranges whose live replicas cannot meet the level (even with all up)


@dataclass(frozen=True)
class Plan:
    action: PlanAction
    targets: list[str]
    scope: list[RepairScope]  # ranges to repair per keyspace, for nodes whose hints cannot be trusted
    reasons: list[str]
    cl_impact: dict[str, KeyspaceImpact]
    classifications: list[Classification]
    app: AppImpact
    held_action: PlanAction | None = None  # what the evidence calls for, held back by an escalation or known condition

    def as_dict(self) -> PlanDoc:
        return cast(PlanDoc, asdict(self))  # asdict is untyped; the fields above are the doc's


def decide_plan(inp: AssessmentInput) -> Plan:
    down = [o for o in inp.nodes if not o.client_reachable or o.peers_seeing_down > 0]
    classes = [
        classify(o.address, o.client_reachable, o.client_error, o.peers_seeing_down, o.peers_total, o.jmx_answers)
        for o in down
    ]
    reasons = [f"{c.node} {c.kind}: {c.reason}" for c in classes]
    dc_of = {t[1]: t[2] for t in inp.ring}
    live = set(dc_of) - {o.address for o in down}
    ranges = {ks: token_ranges(inp.ring, rep) for ks, rep in sorted(inp.keyspaces.items())}
    impact: dict[str, KeyspaceImpact] = {}
    for ks, rs in ranges.items():
        factors = rf_by_dc(inp.keyspaces[ks], inp.local_dc)
        risk = ranges_at_risk(rs, live, factors, dc_of, inp.local_dc)
        impact[ks] = KeyspaceImpact(len(rs), {cl: len(r) for cl, r in risk.items()})
        never = ranges_at_risk(rs, set(dc_of), factors, dc_of, inp.local_dc)  # e.g. THREE on RF 2: not the outage's
        lost = [f"{cl} {len(r)}/{len(rs)}" for cl, r in risk.items() if len(r) > len(never[cl])]
        if lost:
            reasons.append(f"keyspace {ks}: ranges unavailable at {', '.join(lost)}")

    escalations: list[str] = []
    schema = live_schema_agreement(inp)
    if schema.disagreeing:
        versions = schema.disagreeing
        escalations.append(f"schema disagreement among live nodes: {versions}; repairing or streaming could worsen it")
    reasons += schema.set_aside
    unknown = [c.node for c in classes if c.kind is NodeFailureKind.UNKNOWN]
    if unknown:
        escalations.append(f"cannot classify the failure of {', '.join(unknown)}: not acting on unexplained evidence")
    age = inp.app.queue_age_s
    if age is not None and age > inp.max_queue_age_s:
        escalations.append(f"application write queue is {age:.0f} s old, over the {inp.max_queue_age_s:.0f} s limit")

    # A node that came back before assessment still missed writes: hints and verification are owed for it.
    returned = [o for o in inp.nodes if o.returned and o not in down]
    reasons += [
        f"{o.address}: reported down by this incident and back before assessment: hint replay and verification"
        " are still owed"
        for o in returned
    ]
    breached: list[str] = []
    untrusted: list[str] = []
    kind_of = {c.node: c.kind for c in classes}
    for o in [*down, *returned]:
        if o.down_since is None:
            untrusted.append(o.address)
            reasons.append(f"{o.address}: outage start unknown: neither gc_grace nor the hint window can be checked")
        elif gc_grace_breached(inp.now, o.down_since, inp.min_gc_grace_s):
            breached.append(o.address)
            down_s = (inp.now - o.down_since).total_seconds()
            why = "tombstones it missed may be purged: repairing it could resurrect deleted data"
            reasons.append(f"{o.address}: down {down_s:.0f} s >= gc_grace {inp.min_gc_grace_s:.0f} s: {why}")
        else:
            restarted, window = inp.coordinator_restarted, inp.max_hint_window_s
            hd = hint_decision(inp.now, o.down_since, window, o.not_stored_grew, restarted, o.hints_over_size_limit)
            reasons += [f"{o.address}: {r}" for r in hd.reasons]
            crashed = kind_of.get(o.address) is NodeFailureKind.NODE_FAILURE or o.restarted is True
            if crashed and inp.commitlog_periodic is not False:
                # Hints cover what a node missed while away, not what it lost: with periodic commit-log sync a
                # crash drops the writes it acknowledged since the last sync (up to commitlog_sync_period).
                reasons.append(
                    f"{o.address}: its process died or restarted: writes it acknowledged since its last commit-log "
                    "sync (periodic mode) are lost and no hint covers them"
                )
            if not hd.trust_hints or (crashed and inp.commitlog_periodic is not False):
                untrusted.append(o.address)

    scope = [RepairScope(ks, ranges_replicated_by(rs, untrusted)) for ks, rs in ranges.items()] if untrusted else []
    if untrusted:
        reasons.append(
            f"a repair needs every replica of its ranges reachable: run it once {', '.join(untrusted)} answer again"
        )
    if breached:
        action, targets = PlanAction.WIPE_AND_REPLACE, breached
    elif untrusted:
        action, targets = PlanAction.REPAIR, untrusted
    elif down or returned:
        action, targets = PlanAction.WAIT_FOR_HINTS, [o.address for o in [*down, *returned]]
    else:
        action, targets = PlanAction.NO_ACTION, []
        reasons.append("no node is down")

    held: PlanAction | None = None
    if inp.known_condition is not None:
        held = None if action is PlanAction.NO_ACTION else action
        action = PlanAction.NO_ACTION
        reasons = [f"reported, not acted on: {inp.known_condition}", *escalations, *reasons]
    elif escalations:
        held, action = action, PlanAction.ESCALATE
        reasons = [*escalations, *reasons]
    return Plan(action, targets, scope, reasons, impact, classes, inp.app, held)
