"""The watchdog's takeover decision (deployments/orphans.holder_gone): a run whose lease lapsed is taken over, but
never the crash resumer's restart of it while it is on its way to taking its lease back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cassandra_recovery.incident.store import Incident
from cassandra_recovery.logic.incident_states import IncidentState
from deployments.orphans import holder_gone

pytestmark = pytest.mark.area("incident")
NOW = datetime(2026, 12, 7, 21, 16, 25, tzinfo=UTC)
RUN = "bfbbc993-20a0-49c7-85a7-6da4c6f7a773"
GRACE = 20.0


def _incident(lapsed_s: float, state: IncidentState = IncidentState.RECOVERING, run_key: str = RUN) -> Incident:
    return Incident(
        id="inc-1", cluster_id="lab", state=state, opened_at=NOW - timedelta(minutes=5), updated_at=NOW,
        closed_at=None, trigger={}, plan=None, slack_channel=None, slack_ts=None, lease_holder=f"flow-run/{run_key}",
        lease_run_key=run_key, lease_expires_at=NOW - timedelta(seconds=lapsed_s), fencing_token=3, version=9,
    )  # fmt: skip


def test_a_run_whose_lease_lapsed_past_the_grace_is_taken_over() -> None:
    assert holder_gone(_incident(lapsed_s=40), RUN, NOW, GRACE)
    assert holder_gone(_incident(lapsed_s=40), RUN, NOW, GRACE, running_since=NOW - timedelta(minutes=3))


def test_a_lapse_within_the_grace_is_left_alone() -> None:
    assert not holder_gone(_incident(lapsed_s=10), RUN, NOW, GRACE)


def test_the_resumers_restart_is_not_crashed_while_it_takes_its_lease_back() -> None:
    """Seen on a busy CI host: the first pass crashed the dead holder's run at a 23 s lapse; the resumer restarted it,
    and 16 s later, before the restart had its lease back, the next pass crashed the restart too."""
    restarted = NOW - timedelta(seconds=12)  # RUNNING again after the lapse, lease not yet taken back
    assert not holder_gone(_incident(lapsed_s=40), RUN, NOW, GRACE, running_since=restarted)
    # a restart that never takes its lease back is itself gone a grace later
    assert holder_gone(_incident(lapsed_s=70), RUN, NOW, GRACE, running_since=NOW - timedelta(seconds=25))


def test_another_runs_lease_or_a_state_with_a_holder_of_its_own_is_not_this_runs_to_lose() -> None:
    assert not holder_gone(_incident(lapsed_s=40, run_key="other"), RUN, NOW, GRACE)
    assert not holder_gone(_incident(lapsed_s=40, state=IncidentState.ESCALATED), RUN, NOW, GRACE)
    assert not holder_gone(_incident(lapsed_s=40, state=IncidentState.MONITORING), RUN, NOW, GRACE)
