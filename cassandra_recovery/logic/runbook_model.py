"""The runbook's vocabulary (pure): steps, automation levels, and the frozen facts a decision is made from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.incident_states import IncidentState


class Step(StrEnum):
    """What happens next to an incident; the executor runs one step, records its outcome, and asks again."""

    ASSESS = "assess"  # observe and decide a plan (read-only)
    MITIGATE = "mitigate"  # degraded read policy + scheduled repairs paused (reversible)
    WAIT_FOR_HEAL = "wait_for_heal"  # wait for down nodes to come back, until the heal deadline (read-only)
    WATCH_HINTS = "watch_hints"  # watch hint replay to returned nodes finish, then the write queue (read-only)
    REPAIR = "repair"  # repair the ranges of nodes whose hints cannot be trusted
    REPLACE_ASK_APPROVAL = "replace_ask_approval"  # a dead node: its replacement, always behind an approval
    VERIFY = "verify"  # per-replica comparison with PostgreSQL (read-only; a fix is its own step)
    FIX_DIVERGENCE = "fix_divergence"  # the targeted fix of what a verification found different
    RESTORE_NORMAL = "restore_normal"  # lift the mitigation: normal policy, scheduled repairs resumed
    SCHEDULE_FOLLOW_UP = "schedule_follow_up"  # to `monitoring` with a follow-up verification scheduled
    RESOLVE = "resolve"
    ESCALATE = "escalate"  # to `escalated` and page a person (again, if the page is missing)
    RETRY = "retry"  # start a new incident run: the last one failed, or none holds the lease
    NOTHING = "nothing"  # someone else acts (named in the reason): a live run, a follow-up, a person


# Steps with side effects on the cluster or the application: the automation level and the kill switch apply to
# these. Every other step observes, waits, or keeps the incident's books (state, timeline, pages).
ACTING_STEPS: frozenset[Step] = frozenset(
    {Step.MITIGATE, Step.WATCH_HINTS, Step.REPAIR, Step.REPLACE_ASK_APPROVAL, Step.FIX_DIVERGENCE, Step.RESTORE_NORMAL}
)


class AutomationLevel(StrEnum):
    """How much the automation may do on one cluster (settings: ClusterConfig.automation)."""

    OBSERVE = "observe"  # record and report, never act
    PROPOSE = "propose"  # each side effect asks for approval first
    ACT = "act"


class Execution(StrEnum):
    """What the executor does with a decided step."""

    RUN = "run"  # do it
    ASK = "ask"  # ask for approval (suspend-and-form), then do it if approved
    RECORD = "record"  # write it on the timeline as proposed, do not do it


class RunStatus(StrEnum):
    """The incident's run as the caller of the runbook sees it."""

    SELF = "self"  # the caller is the run holding the incident's lease
    OTHER = "other"  # another run holds a live lease (a crashed one is resumed by the crash resumer)
    SUSPENDED = "suspended"  # a run suspended for an approval, holding the lease until it resumes
    FAILED = "failed"  # the last run ended FAILED (terminal in Prefect: nothing retries it by itself)
    NONE = "none"  # no run holds the lease


class Verdict(StrEnum):
    CONVERGED = "converged"
    DIVERGED = "diverged"
    CANNOT_VERIFY = "cannot_verify"


@dataclass(frozen=True)
class NodeHistory:
    """One node seen down during the incident: by a trigger (alert, detector) or by any run's own detection."""

    node: str
    down_since: datetime  # start of its latest outage as seen
    last_seen_down: datetime  # the latest trigger naming it or observation seeing it down
    reported_by_trigger: bool = False
    hints_watched_at: datetime | None = None  # hint replay watched to the end (drained)
    hints_stalled_at: datetime | None = None  # hint replay watched but it stalled: a repair is owed instead
    repaired_at: datetime | None = None


@dataclass(frozen=True)
class VerificationFact:
    at: datetime
    verdict: Verdict


@dataclass(frozen=True)
class PendingApproval:
    step: Step
    deadline: datetime
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunFacts:
    status: RunStatus
    failures: int = 0  # failed (or orphaned) runs of this incident so far
    last_failure: str | None = None


@dataclass(frozen=True)
class IncidentFacts:
    """What the incident's timeline says (the executor derives it from the stored events)."""

    state: IncidentState
    run: RunFacts
    nodes: tuple[NodeHistory, ...] = ()
    last_trigger_at: datetime | None = None  # the newest trigger that opened or joined it
    last_trigger_nodes: tuple[str, ...] = ()  # the known nodes it named (none: a manual run or unknown names)
    mitigated: bool = False  # the mitigation is on and not lifted yet
    mitigation_declined: bool = False  # recorded only (observe), refused or expired: go on without it
    verification: VerificationFact | None = None  # the newest verification
    fixed_at: datetime | None = None  # the newest targeted fix of a divergence
    approval: PendingApproval | None = None  # undecided approval request
    blocked: str | None = None  # why a step could not finish (declined side effect, repair escalated, ...)
    follow_up_at: datetime | None = None  # the scheduled follow-up verification
    paged: bool = False  # a person was paged for the escalation
    # When the trigger that re-opened the incident from `monitoring` came: whatever happened since the last
    # verification is over or still going on and its writes may be anywhere. The nodes seen down since then get
    # their hints watched; with none named, every node's hints and the write queue are; then a verification.
    reopened_at: datetime | None = None
    all_hints_watched_at: datetime | None = None  # hint replay to every node of the cluster watched to the end


@dataclass(frozen=True)
class PlanView:
    """The newest assessment's plan, as the runbook needs it."""

    action: PlanAction
    targets: tuple[str, ...]
    made_at: datetime
    replaceable: frozenset[str] = frozenset()  # nodes whose failure is a dead process (never hung/partitioned)
    known_condition: str | None = None  # maintenance or silence: reported, not acted on
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observation:
    """A fresh look at the cluster: nodes down now (detection, by name) and the newest plan."""

    now: datetime
    down: frozenset[str] = frozenset()
    plan: PlanView | None = None


@dataclass(frozen=True)
class Controls:
    """Per-cluster settings the decision obeys."""

    level: AutomationLevel = AutomationLevel.ACT
    kill_switch: str | None = None  # why automation is stopped on the cluster; None: not stopped
    max_run_retries: int = 2
    heal_timeout_s: float = 900.0
    follow_up_s: float = 86400.0


@dataclass(frozen=True)
class Decision:
    step: Step
    reason: str
    level: AutomationLevel
    execution: Execution
    state: IncidentState  # the incident's state while the step runs (the executor walks to it first)
    targets: tuple[str, ...] = ()
    until: datetime | None = None  # a deadline: heal, approval, follow-up
    proposed: Step | None = field(default=None)  # an acting step held back (kill switch), for the timeline
