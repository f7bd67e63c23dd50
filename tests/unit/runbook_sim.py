"""A fake executor for the runbook: runs each decided step against an in-memory incident until it is quiet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.runbook import decide, seen_down, transitions_to
from cassandra_recovery.logic.runbook_model import (
    Controls,
    Decision,
    Execution,
    IncidentFacts,
    Observation,
    PlanView,
    RunFacts,
    RunStatus,
    Step,
    Verdict,
    VerificationFact,
)

QUIET = (Step.NOTHING, Step.RESOLVE, Step.ESCALATE)


def hints_plan(down: frozenset[str], now: datetime) -> PlanView:
    """What the assessment says of a clean outage: wait for hints for the nodes down now."""
    if not down:
        return PlanView(PlanAction.NO_ACTION, (), now, reasons=("no node is down",))
    return PlanView(PlanAction.WAIT_FOR_HINTS, tuple(sorted(down)), now)


@dataclass
class World:
    facts: IncidentFacts
    now: datetime
    down: set[str] = field(default_factory=set)
    plan: PlanView | None = None
    controls: Controls = Controls()
    assess: Callable[[frozenset[str], datetime], PlanView] = hints_plan
    verdicts: list[Verdict] = field(default_factory=list)  # verification outcomes in order; then converged
    approve: bool | None = None  # ASK: None stops there, True/False is the person's answer

    def observation(self) -> Observation:
        return Observation(self.now, frozenset(self.down), self.plan)


def run(world: World, max_steps: int = 40) -> list[Decision]:
    """Decide and execute until a quiet step (nothing, resolve, escalate) or an unanswered approval."""
    out: list[Decision] = []
    for _ in range(max_steps):
        obs = world.observation()
        d = decide(world.facts, obs, world.controls)
        out.append(d)
        transitions_to(world.facts.state, d.state)  # raises when the lifecycle has no walk there
        f = replace(world.facts, state=d.state, nodes=tuple(seen_down(world.facts, obs).values()))
        world.facts = f
        if d.step in QUIET or (d.execution is Execution.ASK and world.approve is None):
            if d.step is Step.ESCALATE:
                world.facts = replace(world.facts, paged=True)
            return out
        if d.execution is Execution.RECORD or (d.execution is Execution.ASK and world.approve is False):
            why = f"{d.step} {'recorded only' if d.execution is Execution.RECORD else 'refused'} ({d.level})"
            declined = {"mitigation_declined": True} if d.step is Step.MITIGATE else {"blocked": why}
            world.facts = replace(world.facts, **declined)  # type: ignore[arg-type]
        else:
            _execute(world, d)
        world.now += timedelta(seconds=5)
    raise AssertionError(f"no quiet step after {max_steps}: {[d.step for d in out]}")


def _execute(world: World, d: Decision) -> None:
    f, now = world.facts, world.now
    if d.step is Step.MITIGATE:
        f = replace(f, mitigated=True)
    elif d.step is Step.ASSESS:
        world.plan = world.assess(frozenset(world.down), now)
    elif d.step is Step.WAIT_FOR_HEAL:
        world.down -= set(d.targets)  # they come back while it waits
    elif d.step in (Step.WATCH_HINTS, Step.REPAIR, Step.REPLACE_ASK_APPROVAL):
        key = "hints_watched_at" if d.step is Step.WATCH_HINTS else "repaired_at"
        world.down -= set(d.targets)
        done = now + timedelta(seconds=1)  # finishes after the node was last seen down (now, if down)
        f = replace(f, nodes=tuple(replace(n, **{key: done}) if n.node in d.targets else n for n in f.nodes))
    elif d.step is Step.VERIFY:
        verdict = world.verdicts.pop(0) if world.verdicts else Verdict.CONVERGED
        f = replace(f, verification=VerificationFact(now, verdict))
    elif d.step is Step.FIX_DIVERGENCE:
        f = replace(f, fixed_at=now)
    elif d.step is Step.RESTORE_NORMAL:
        f = replace(f, mitigated=False)
    elif d.step is Step.SCHEDULE_FOLLOW_UP:
        f = replace(f, follow_up_at=d.until)
    elif d.step is Step.RETRY:
        f = replace(f, run=RunFacts(RunStatus.SELF, f.run.failures, f.run.last_failure))
    world.facts = f


def steps(decisions: list[Decision]) -> list[Step]:
    return [d.step for d in decisions]
