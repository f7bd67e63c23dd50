"""The shapes that cross the Prefect boundary: flow and task parameters and results.

TypedDicts, not models: values stay plain JSON at runtime (results are persisted as JSON and must load after an
upgrade, whatever modules moved), while mypy checks how each one is built and read, and pydantic validates flow
parameters against them (Prefect builds its UI forms and checks runs' parameters from these schemas). Parameter
shapes allow extra keys: validation must not drop what a newer sender adds. A leaf module: no project imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NotRequired, Required  # pydantic needs typing_extensions' TypedDict before 3.12

from pydantic import ConfigDict, JsonValue, with_config
from typing_extensions import TypedDict

JsonObject = dict[str, JsonValue]  # free-form payloads: timeline event data, evidence
_OPEN = ConfigDict(extra="allow")

# --- inputs: what starts and steers a run ----------------------------------------------------------------------


@with_config(_OPEN)
class Trigger(TypedDict, total=False):
    """Why an incident run started: an alert (intake/keys.py trigger_doc), the detector (detection/handover.py),
    the watchdog (deployments/orphans.py), a person or a test ({"source": "manual"})."""

    source: Required[str]
    kind: str
    nodes: list[str]
    reasons: list[str]
    incident_id: str  # the incident the receiver or the watchdog opened or joined for it
    reason: str
    # an alert's
    status: str
    alertname: str
    fingerprint: str
    starts_at: str
    ends_at: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    dedup_key: str
    # the detector's
    evidence: JsonObject
    confirmed_at: str
    suspected_at: str


@with_config(_OPEN)
class RangeDoc(TypedDict):
    """A token range (start exclusive, end inclusive) and its replicas in placement order."""

    start: int
    end: int
    replicas: Sequence[str]  # a tuple before the plan is persisted, a list after


@with_config(_OPEN)
class ScopeEntry(TypedDict):
    """One keyspace of a plan's repair scope."""

    keyspace: str
    ranges: list[RangeDoc]


@with_config(_OPEN)
class KeyspaceImpactDoc(TypedDict):
    ranges: int
    unavailable: dict[str, int]  # consistency level -> ranges that cannot meet it


@with_config(_OPEN)
class ClassificationDoc(TypedDict):
    node: str
    kind: str
    reason: str


@with_config(_OPEN)
class AppImpactDoc(TypedDict):
    breaker_state: str | None
    fallback_share: float | None
    queue_age_s: float | None


@with_config(_OPEN)
class PlanDoc(TypedDict, total=False):
    """The assessment's plan (logic/assessment.py Plan.as_dict), with the regions section of a multi-datacenter
    cluster. The incident loop hands recovery a copy with its own action and targets."""

    action: Required[str]
    targets: Required[list[str]]
    scope: list[ScopeEntry]
    reasons: list[str]
    cl_impact: dict[str, KeyspaceImpactDoc]
    classifications: list[ClassificationDoc]
    app: AppImpactDoc
    held_action: str | None
    regions: JsonObject
    down: list[str]
    foreign_repairs: list[ForeignRepairDoc]


@with_config(_OPEN)
class SegmentDoc(TypedDict):
    """One repair segment (logic/segments.py Segment) as tasks pass it."""

    keyspace: str
    start: int
    end: int
    replicas: list[str]
    coordinator: str


@with_config(_OPEN)
class Pacing(TypedDict):
    """How a routine repair is paced: Reaper's intensity, blackouts and windows ("Mon-Fri 08:00-18:00")."""

    intensity: float
    blackouts: list[str]
    windows: list[str]
    timezone: str


@with_config(_OPEN)
class FollowUpTable(TypedDict):
    """The table a deferred follow-up verification reads (None: settings' default)."""

    keyspace: str | None
    table: str | None


# --- observations ----------------------------------------------------------------------------------------------


@with_config(_OPEN)
class ProbeDoc(TypedDict):
    """A client probe of one node (logic/probe_result.py ProbeResult)."""

    address: str
    ok: bool
    latency_ms: float | None
    error: str | None


@with_config(_OPEN)
class HintCountersDoc(TypedDict):
    total: int
    created: dict[str, int]
    not_stored: dict[str, int]
    succeeded: int


@with_config(_OPEN)
class NodeCountersDoc(TypedDict):
    error: str | None
    dropped_mutations: int | None
    hints: HintCountersDoc | None


@with_config(_OPEN)
class SchemaVersionsDoc(TypedDict):
    versions: dict[str, list[str]]
    agreement: bool
    unreachable: list[str]


@with_config(_OPEN)
class RegionsVerdictDoc(TypedDict):
    kind: str
    sides: list[list[str]]
    reasons: list[str]
    one_way: Sequence[Sequence[str]]  # (from, to) pairs
    dead: list[str]


@with_config(_OPEN)
class RegionViewDoc(TypedDict):
    dc: str
    probes: dict[str, bool]
    gossip: dict[str, str]
    connected: dict[str, bool]


@with_config(_OPEN)
class RegionsDoc(TypedDict):
    """Each datacenter's view, observed until the verdict is stable (detection/regions.py)."""

    verdict: RegionsVerdictDoc
    views: dict[str, RegionViewDoc | None]
    origin: dict[str, str]
    observations: int
    settled: bool


@with_config(_OPEN)
class DetectedNode(TypedDict):
    address: str
    probe: ProbeDoc
    peers_seeing_down: int
    peers_total: int


@with_config(_OPEN)
class Detection(TypedDict):
    """The detect flow's result, and the assessment's input."""

    cluster: str
    nodes: dict[str, DetectedNode]
    views: dict[str, dict[str, str]]
    schema: SchemaVersionsDoc | None
    counters: dict[str, NodeCountersDoc]
    down: list[str]
    regions: RegionsDoc | None


# --- reports: what the steps did ---------------------------------------------------------------------------------


@with_config(_OPEN)
class ForeignRepairDoc(TypedDict):
    """A repair someone else started (Reaper, cron, an operator), as one node showed it
    (logic/foreign_repairs.py RunningRepair.as_doc)."""

    id: str
    seen_on: str
    source: str
    kind: str
    coordinator: str | None
    keyspace: str | None
    ranges: list[str]
    started_at: str | None
    participants: list[str]
    described: str


class RepairReportDoc(TypedDict, total=False):
    """A repair run (recovery/repair.py RepairReport.as_dict); a routine repair adds its pacing figures, an
    interrupted one why."""

    run_key: str
    kind: str
    resumed: bool
    segments: int
    already_done: int
    ran: int
    reconciled: int
    waited_in_flight: int
    cancelled: int
    retries: int
    failed: list[str]
    escalated: bool
    reasons: list[str]
    parent_ids: list[str]
    foreign_repairs: list[ForeignRepairDoc]
    elapsed_s: float
    held_s: float
    paused_s: float
    interrupted: str


@with_config(_OPEN)
class HintDrainDoc(TypedDict):
    """Hint delivery watched on every coordinator (recovery/hints.py DrainReport.as_dict)."""

    targets: list[str]
    state: str  # drained, stalled, timeout, ...
    elapsed_s: float
    handoff_actions: dict[str, list[str]]
    samples: Sequence[Sequence[float]]  # (seconds since start, pending files)
    reason: str


@with_config(_OPEN)
class QueueStatsDoc(TypedDict):
    """The write queue's counters (degraded/outbox.py QueueStats.as_dict)."""

    queued: int
    delivered: int
    dead: int
    in_flight: int
    oldest_queued_age_s: float
    oldest_dead_age_s: float


@with_config(_OPEN)
class QueueStatusDoc(QueueStatsDoc):
    cluster: str


@with_config(_OPEN)
class RelayRunDoc(TypedDict):
    """One relay pass (degraded/relay.py RelayReport.as_dict)."""

    claimed: int
    delivered: int
    requeued: int
    dead: int
    stale: NotRequired[int]  # lost claims; absent in results written before it was counted
    errors: list[str]


@with_config(_OPEN)
class BacklogDoc(TypedDict):
    queued: int
    dead: int


@with_config(_OPEN)
class QueueDrainDoc(QueueStatusDoc):
    """The queue drained up to a watermark: `drained` when nothing committed before it is still queued."""

    drained: bool
    backlog: BacklogDoc
    run: RelayRunDoc


@with_config(_OPEN)
class RowsComparedDoc(TypedDict):
    postgres: int
    cassandra: int


@with_config(_OPEN)
class CompareDoc(TypedDict):
    """The cache against the source of truth (degraded/compare.py CompareResult.as_dict)."""

    equal: bool
    chunks: int
    rows_compared: RowsComparedDoc
    differing_chunks: list[list[str]]
    missing: list[str]
    extra: list[str]
    different: list[str]
    consistency: str


@with_config(_OPEN)
class CompareWithQueueDoc(CompareDoc):
    cluster: str
    queue: QueueStatsDoc


@with_config(_OPEN)
class KillSwitchDoc(TypedDict):
    """Automation stopped for a cluster: why, by whom, since when."""

    reason: str
    set_by: str
    since: str


class ReaperStepDoc(TypedDict):
    """What pausing or resuming Reaper did (mitigation/reaper.py): the schedule and run ids Reaper changed, those
    already in that state, and the errors (Reaper unreachable or refusing)."""

    schedules: list[str]
    runs: list[str]
    unchanged: list[str]
    errors: list[str]


@with_config(_OPEN)
class MitigationDoc(TypedDict):
    """The mitigation an incident applied (mitigation/apply.py), as its `mitigated` event keeps it."""

    policy: str
    read_consistency: str | None
    repairs_paused: bool
    pause_owner: str | None
    by: str
    reaper: NotRequired[ReaperStepDoc]  # only for a cluster with a Reaper in the registry


@with_config(_OPEN)
class PolicyChangeDoc(TypedDict, total=False):
    """The normal policy back (restored after verification, or lifted by the assessment)."""

    policy: Required[str]
    repairs_resumed: Required[bool]
    reason: str
    reaper: ReaperStepDoc


@with_config(_OPEN)
class HealDoc(TypedDict, total=False):
    """Whether the targets came back within the timeout."""

    up: Required[bool]
    waited_s: Required[float]
    still_down: list[str]


@with_config(_OPEN)
class ReplacementDoc(TypedDict):
    """A node replaced (recovery/provisioner.py Replacement), approved by a person."""

    dead_address: str
    new_address: str
    new_name: str
    elapsed_s: float
    approved_by: str


class ReadLimits(TypedDict, total=False):
    """A verification's read settings for one run, over settings' `verification` (the CLI's options)."""

    target_rows_per_chunk: int
    rows_per_s: float  # 0: no ceiling
    preview: bool  # nodetool repair --preview --full as a second opinion


@with_config(_OPEN)
class VerificationReportDoc(TypedDict, total=False):
    """One verification pass (verification/verifier.py VerificationReport.as_dict)."""

    cluster: Required[str]
    keyspace: Required[str]
    table: Required[str]
    verdict: Required[str]  # converged, diverged, cannot_verify
    reference: Required[str]
    chunks: int
    rows_compared: Required[int]
    rows_truth: int
    down: Required[list[str]]
    diffs: list[JsonObject]
    unverified: Required[list[JsonObject]]
    preview: Required[JsonObject | None]
    reasons: Required[list[str]]
    reads: int
    probes: int
    latency_refreshes: int
    rows_read: int
    narrowing_rows_listed: int
    elapsed_s: Required[float]
    clock_skew: dict[str, JsonObject]
    scope: JsonObject | None
    converged: Required[bool]
    mismatches: Required[int]
    replicas: Required[list[str]]
    keys: Required[dict[str, list[str]]]


@with_config(_OPEN)
class SlackPostDoc(TypedDict, total=False):
    posted: Required[bool]
    channel: str | None
    ts: str | None
    error: str | None


@with_config(_OPEN)
class FollowUpDoc(TypedDict, total=False):
    """A follow-up verification scheduled (or why not)."""

    scheduled: Required[bool]
    at: Required[str]
    flow_run_id: str
    error: str
    reason: str


@with_config(_OPEN)
class PostmortemDoc(TypedDict):
    version: int
    state: str
    chars: int
    slack: SlackPostDoc


@with_config(_OPEN)
class IncidentView(TypedDict, total=False):
    """An incident as tasks return it (incident/store.py Incident, times in ISO 8601); `created` from
    open-or-join only."""

    id: Required[str]
    cluster_id: Required[str]
    state: Required[str]
    opened_at: Required[str]
    updated_at: Required[str]
    closed_at: Required[str | None]
    trigger: Required[Trigger]
    plan: Required[PlanDoc | None]
    slack_channel: Required[str | None]
    slack_ts: Required[str | None]
    lease_holder: Required[str | None]
    lease_run_key: Required[str | None]
    lease_expires_at: Required[str | None]
    fencing_token: Required[int]
    version: Required[int]
    created: bool


@with_config(_OPEN)
class EventView(TypedDict):
    """A timeline event (incident/store.py Event, its time in ISO 8601)."""

    seq: int
    incident_id: str
    at: str
    kind: str
    actor: str
    fencing_token: int | None
    data: JsonObject


# --- flow results ------------------------------------------------------------------------------------------------


# Functional form: "pass" is a keyword. Results only (never validated as parameters), so no extra-keys config.
VerifyPassDoc = TypedDict(
    "VerifyPassDoc",
    {"pass": str, "kind": str, "verdict": str, "rows_compared": int, "keys": dict[str, int], "changed_keys": int},
    total=False,
)


@with_config(_OPEN)
class FixDoc(TypedDict, total=False):
    """A divergence fixed in place or by a repair (verification/service.py fix)."""

    method: Required[str]
    why: Required[str]
    keys: int | list[str]
    repair: JsonObject


class Evidence(TypedDict, total=False):
    """What restoring the normal policy rests on: a passing comparison (`equal`) and the verification passes."""

    equal: Required[bool]
    verification: list[VerifyPassDoc]
    why: str


class VerifyDoc(TypedDict, total=False):
    """The verify flow's result: the last pass's verdict, every pass in brief, the fix, why it escalates."""

    converged: Required[bool]
    verdict: Required[str]
    passes: Required[list[VerifyPassDoc]]
    report: Required[VerificationReportDoc]
    fix: FixDoc
    fix_skipped: str
    escalate: str


class RecoveryDoc(TypedDict, total=False):
    """What a recovery ran (recover, replacement, re-verification of every hint) and why it escalates."""

    targets: list[str]
    action: str
    steps: Required[list[str]]
    heal: HealDoc
    not_back: list[str]
    hints: HintDrainDoc
    repair: RepairReportDoc
    replaced: list[ReplacementDoc]
    queue: JsonObject
    compare: CompareWithQueueDoc
    escalate: str


class IncidentResult(TypedDict, total=False):
    """The incident flow's result."""

    cluster: Required[str]
    dry_run: bool
    plan: PlanDoc | None
    plans: list[PlanDoc]
    incident_id: str
    acting: bool
    skipped: str
    state: str
    created: bool
    slack: SlackPostDoc | None
    recovery: RecoveryDoc | None
    fencing_token: int


class FollowUpResult(TypedDict, total=False):
    """The follow-up verification's result."""

    incident_id: Required[str]
    skipped: str
    deferred: FollowUpDoc
    state: str
    verification: list[VerifyPassDoc]
    postmortem: PostmortemDoc


class ScheduledRepairResult(RepairReportDoc, total=False):
    """A routine repair's result: skipped (why), or its outcome with the repair's report."""

    schedule: Required[str]
    cluster: Required[str]
    skipped: str
    outcome: str
