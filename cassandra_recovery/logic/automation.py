"""What the automation may do on a cluster (its level), and what it would have done when it may not (pure)."""

from __future__ import annotations

from collections.abc import Sequence

ACT = "act"  # today's behaviour: every step runs
LEVELS = ("observe", "propose", ACT)


def may_act(level: str) -> bool:
    """Only `act` runs side effects on its own. `observe` records and reports; `propose` runs them once a person
    approved the proposed plan (the incident run suspends for it)."""
    if level not in LEVELS:
        raise ValueError(f"unknown automation level {level!r}; one of {', '.join(LEVELS)}")
    return level == ACT


def proposed_steps(action: str, targets: Sequence[str], reverify: bool = False) -> list[str]:
    """The side effects the runbook would run for this plan, in order, as a person would read them."""
    on = ", ".join(targets) or "the cluster"
    recovery = {
        "wait_for_hints": f"wait for {on} to return and watch hint replay finish",
        "repair": f"repair the ranges of {on}",
        "wipe_and_replace": f"replace {on} (after approval)",
    }
    if reverify:
        return [
            "watch every hint delivered",
            "drain the write queue",
            "verify every replica (and fix differences)",
            "close the incident",
        ]
    steps = ["mitigate: degraded read policy, scheduled repairs paused"]
    steps.append(recovery.get(action, f"{action} for {on}"))
    steps += ["drain the write queue", "verify every replica (and fix differences)", "restore the normal policy"]
    return steps


def held_back(level: str, cluster_id: str, steps: Sequence[str]) -> str:
    """The escalation reason when the level holds the automation back: what it would have done, for a person."""
    return f"automation level {level} on {cluster_id}: proposed, not run: " + "; ".join(steps)
