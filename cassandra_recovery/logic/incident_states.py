"""Incident lifecycle states and the transitions allowed between them (pure: no I/O)."""

from __future__ import annotations

from enum import StrEnum

from cassandra_recovery.errors import RecoveryError


class IncidentState(StrEnum):
    DETECTED = "detected"
    ASSESSING = "assessing"
    MITIGATING = "mitigating"
    RECOVERING = "recovering"
    VERIFYING = "verifying"
    MONITORING = "monitoring"  # verified; open until the follow-up verification passes
    RESOLVED = "resolved"
    ESCALATED = "escalated"


S = IncidentState

# Terminal for the automation: nothing automatic happens after these. A resolved incident is closed for
# good; an escalated one is owned by a human, who may hand it back (escalated -> assessing).
TERMINAL: frozenset[IncidentState] = frozenset({S.RESOLVED, S.ESCALATED})

ALLOWED: dict[IncidentState, set[IncidentState]] = {
    S.DETECTED: {S.ASSESSING, S.ESCALATED, S.RESOLVED},
    # assessing -> assessing: re-assess (a new failure joined the incident)
    S.ASSESSING: {S.MITIGATING, S.RECOVERING, S.VERIFYING, S.ESCALATED, S.RESOLVED, S.ASSESSING},
    S.MITIGATING: {S.RECOVERING, S.ESCALATED},
    S.RECOVERING: {S.VERIFYING, S.ESCALATED, S.ASSESSING},
    S.VERIFYING: {S.RESOLVED, S.MONITORING, S.RECOVERING, S.ESCALATED},
    # monitoring -> assessing: a new failure joined the incident before the follow-up passed
    S.MONITORING: {S.RESOLVED, S.ESCALATED, S.ASSESSING},
    S.ESCALATED: {S.ASSESSING, S.RESOLVED},  # a human hands it back, or closes it
    S.RESOLVED: set(),
}


class InvalidTransition(RecoveryError):
    """The lifecycle does not allow going from `old` to `new` (or a state name is unknown)."""

    def __init__(self, old: str, new: str, reason: str = "") -> None:
        self.old = old
        self.new = new
        super().__init__(f"invalid incident transition {old} -> {new}" + (f": {reason}" if reason else ""))


def check_transition(old: IncidentState | str, new: IncidentState | str) -> None:
    """Raise InvalidTransition unless `old -> new` is in ALLOWED; plain strings are accepted too."""
    try:
        o, n = IncidentState(old), IncidentState(new)
    except ValueError:
        raise InvalidTransition(str(old), str(new), "unknown state") from None
    if n not in ALLOWED[o]:
        allowed = ", ".join(sorted(ALLOWED[o])) or "nothing"
        raise InvalidTransition(o, n, f"{o} may go to {allowed}")
