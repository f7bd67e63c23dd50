from __future__ import annotations

import itertools

import pytest

from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.logic.incident_states import (
    ALLOWED,
    TERMINAL,
    IncidentState,
    InvalidTransition,
    check_transition,
)

pytestmark = pytest.mark.area("incident")

S = IncidentState

# Written out independently of ALLOWED, so an accidental edit of the table fails here.
EXPECTED = {
    (S.DETECTED, S.ASSESSING),
    (S.DETECTED, S.ESCALATED),
    (S.DETECTED, S.RESOLVED),
    (S.ASSESSING, S.MITIGATING),
    (S.ASSESSING, S.RECOVERING),
    (S.ASSESSING, S.VERIFYING),
    (S.ASSESSING, S.ESCALATED),
    (S.ASSESSING, S.RESOLVED),
    (S.ASSESSING, S.ASSESSING),
    (S.MITIGATING, S.RECOVERING),
    (S.MITIGATING, S.ESCALATED),
    (S.RECOVERING, S.VERIFYING),
    (S.RECOVERING, S.ESCALATED),
    (S.RECOVERING, S.ASSESSING),
    (S.VERIFYING, S.RESOLVED),
    (S.VERIFYING, S.RECOVERING),
    (S.VERIFYING, S.ESCALATED),
    (S.VERIFYING, S.MONITORING),
    (S.MONITORING, S.RESOLVED),
    (S.MONITORING, S.ESCALATED),
    (S.MONITORING, S.ASSESSING),
    (S.ESCALATED, S.ASSESSING),
    (S.ESCALATED, S.RESOLVED),
}
ALL_PAIRS = list(itertools.product(IncidentState, repeat=2))


def test_state_values() -> None:
    assert [s.value for s in IncidentState] == [
        "detected",
        "assessing",
        "mitigating",
        "recovering",
        "verifying",
        "monitoring",
        "resolved",
        "escalated",
    ]
    assert TERMINAL == {S.RESOLVED, S.ESCALATED}


def test_allowed_table_matches_the_lifecycle() -> None:
    assert set(ALLOWED) == set(IncidentState)
    assert {(old, new) for old, news in ALLOWED.items() for new in news} == EXPECTED
    assert ALLOWED[S.RESOLVED] == set()


@pytest.mark.parametrize(("old", "new"), sorted(EXPECTED))
def test_allowed_transitions_pass(old: IncidentState, new: IncidentState) -> None:
    check_transition(old, new)
    check_transition(old.value, new.value)  # plain strings (as stored) work too


@pytest.mark.parametrize(("old", "new"), sorted(set(ALL_PAIRS) - EXPECTED))
def test_all_other_transitions_raise(old: IncidentState, new: IncidentState) -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition(old, new)
    assert isinstance(info.value, RecoveryError)
    assert (info.value.old, info.value.new) == (old, new)
    assert f"{old} -> {new}" in str(info.value)


def test_every_pair_is_covered() -> None:
    assert len(ALL_PAIRS) == 64
    assert len(EXPECTED) + len(set(ALL_PAIRS) - EXPECTED) == 64


def test_resolved_is_a_dead_end_and_escalated_goes_back_to_assessing_or_is_closed_by_a_person() -> None:
    """Issue 19: an escalated incident is handed back (assessing) or closed (resolved) by a person; nothing else."""
    for new in IncidentState:
        with pytest.raises(InvalidTransition, match="resolved may go to nothing"):
            check_transition(S.RESOLVED, new)
    assert {n for n in IncidentState if (S.ESCALATED, n) in EXPECTED} == {S.ASSESSING, S.RESOLVED}


@pytest.mark.parametrize(("old", "new"), [("detected", "fixed"), ("nope", "assessing"), ("", "")])
def test_unknown_state_names_raise_invalid_transition(old: str, new: str) -> None:
    with pytest.raises(InvalidTransition, match="unknown state") as info:
        check_transition(old, new)
    assert (info.value.old, info.value.new) == (old, new)
