"""Post-mortem from an incident timeline: phase times and durations, phases that did not happen, hint/repair/
verification figures, approvals, escalations, and the Markdown / Slack / progress-table renderings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cassandra_recovery.logic.postmortem import (
    KEY_CAP,
    PHASES,
    SLACK_LIMIT,
    SUMMARY_CAP,
    PostMortem,
    build_postmortem,
    format_duration,
    progress_table,
    render_markdown,
    render_slack_summary,
)

pytestmark = pytest.mark.area("incident")

T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
NODE = "127.0.0.3"
RUN = "flow-run/1f0c"
CLOSED = "closed"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def timeline(*entries: tuple[float, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as IncidentStore.events() gives them: seq in order, the flow run as actor (the opener: the detector)."""
    return [
        {"seq": i, "at": at(s), "kind": kind, "actor": "detector" if kind == "opened" else RUN, "data": data}
        for i, (s, kind, data) in enumerate(entries, start=1)
    ]


def incident(state: str, closed_at: datetime | None = None, **trigger: Any) -> dict[str, Any]:
    doc = {"source": "detector", "kind": "node_down", "nodes": [NODE], "reasons": ["no gossip"], "evidence": {}}
    return {
        "id": "inc-20250301-100015-abc",
        "cluster_id": "lab",
        "state": state,
        "opened_at": at(15),
        "closed_at": closed_at,
        "trigger": doc | trigger,
        "plan": {"action": "wait_for_hints", "targets": [NODE], "reasons": ["down 3m, within the hint window"]},
    }


def tr(old: str, new: str, **data: Any) -> dict[str, Any]:
    return {"from": old, "to": new, "data": data}


def hint_report(state: str, elapsed_s: float, samples: list[list[float]], reason: str = "") -> dict[str, Any]:
    return {
        "targets": [NODE],
        "state": state,
        "elapsed_s": elapsed_s,
        "handoff_actions": {"127.0.0.2": ["resumehandoff"], "127.0.0.4": ["resumehandoff"]},
        "samples": samples,
        "reason": reason,
    }


MITIGATED = {"policy": "degraded", "read_consistency": "ONE", "repairs_paused": True, "pause_owner": "inc"}
CONVERGED = {"verdict": "converged", "pass": "initial", "rows_compared": 1200, "mismatches": 0, "unverified": 0}

# suspected 10:00:00, confirmed 10:00:12, opened 10:00:15; hints sufficed, no repair; resolved at 10:03:45
HINT_ONLY = timeline(
    (15, "opened", {"source": "detector", "kind": "node_down", "nodes": [NODE]}),
    (16, "lease_acquired", {"reason": "free", "run_key": "1f0c", "ttl_s": 1800.0, "previous_holder": None}),
    (17, "transition", tr("detected", "assessing", by=RUN)),
    (20, "plan_set", {"plan": {"action": "wait_for_hints", "targets": [NODE]}}),
    (21, "transition", tr("assessing", "mitigating", plan="wait_for_hints")),
    (22, "mitigation_started", {"reason": f"wait_for_hints for {NODE}"}),
    (25, "mitigated", MITIGATED),
    (26, "transition", tr("mitigating", "recovering")),
    (130, "healed", {"targets": [NODE], "waited_s": 104.2}),
    (180, "hints_drained", hint_report("drained", 50.3, [[0, 120], [20, 31], [48.5, 0]])),
    (210, "verified", CONVERGED),
    (211, "follow_up_scheduled", {"at": "2025-03-01T11:03:31+00:00", "flow_run_id": "fr-follow"}),
    (212, "recovery_finished", {"targets": [NODE], "steps": ["hints drained in 50.3s"]}),
    (213, "transition", tr("recovering", "verifying", steps=["hints drained in 50.3s"])),
    (220, "policy_restored", {"policy": "normal", "repairs_resumed": True}),
    (225, "transition", tr("verifying", "resolved", policy="normal")),
    (226, "lease_released", {}),
)


def hint_only() -> PostMortem:
    inc = incident("resolved", at(225), suspected_at=T0.isoformat(), confirmed_at="2025-03-01T10:00:12+00:00")
    return build_postmortem(inc, HINT_ONLY)


DIFFERENT = [f"user:{i:03d}" for i in range(25)]


def repair_incident() -> PostMortem:
    """Hints stalled, repair ran; the first verification diverged, the fix converged; the follow-up ran later."""
    events = timeline(
        (0, "opened", {"source": "detector", "kind": "node_down", "nodes": [NODE]}),
        (3, "plan_set", {"plan": {"action": "wait_for_hints", "targets": [NODE]}}),
        (5, "mitigated", MITIGATED),
        (65, "healed", {"targets": [NODE], "waited_s": 59.6}),
        (250, "hints_drained", hint_report("stalled", 185.0, [[0, 400], [60, 380]], "did not go down for 120s")),
        (
            480,
            "repaired",
            {
                "run_key": "incident/inc-1",
                "kind": "full",
                "resumed": False,
                "segments": 12,
                "already_done": 0,
                "ran": 11,
                "reconciled": 1,
                "retries": 1,
                "failed": [],
                "escalated": False,
                "reasons": [],
                "elapsed_s": 229.6,
            },
        ),
        (
            540,
            "verified",
            {
                "verdict": "diverged",
                "pass": "initial",
                "rows_compared": 5000,
                "mismatches": 27,
                "unverified": 0,
                "keys": {"missing": ["user:900", "user:901"], "extra": [], "different": DIFFERENT},
                "replicas": [NODE, "127.0.0.4"],
            },
        ),
        (
            600,
            "verified",
            CONVERGED
            | {
                "pass": "after_fix",
                "rows_compared": 5000,
                "fixed": {"method": "read_repair", "keys": 27, "why": "27 keys differ"},
                "preview": {"in_sync": True, "ranges": 4},
            },
        ),
        (601, "follow_up_scheduled", {"at": "2025-03-01T11:10:00+00:00", "flow_run_id": "fr-follow"}),
        (620, "transition", tr("verifying", "resolved")),
        (4200, "verified", CONVERGED | {"pass": "follow_up", "rows_compared": 5100}),
    )
    return build_postmortem(incident("resolved", at(620)), events)


def rejected() -> PostMortem:
    """The node did not come back; its replacement was rejected; the incident escalated."""
    reason = f"replacement rejected by bob: {NODE} not replaced"
    events = timeline(
        (0, "opened", {"source": "detector", "kind": "node_down", "nodes": [NODE]}),
        (10, "mitigated", MITIGATED),
        (
            920,
            "approval_requested",
            {
                "action": "replace",
                "nodes": [NODE],
                "reason": "node failed and did not come back",
                "deadline": "2025-03-01T11:15:20+00:00",
                "flow_run_id": "fr-1",
            },
        ),
        (1500, "approval_decided", {"approved": False, "approver": "bob", "note": "disk being swapped"}),
        (1501, "recovery_finished", {"escalate": reason, "steps": []}),
        (1502, "transition", tr("recovering", "escalated", reason=reason)),
        (1503, "escalated", {"reason": reason}),  # the same escalation, named once
    )
    return build_postmortem(incident("escalated"), events)


def still_open() -> PostMortem:
    """Recovering: the node answers again, hints are still draining; an approval from before is still waiting."""
    events = timeline(
        (0, "opened", {"source": "detector", "kind": "node_down", "nodes": [NODE]}),
        (1, "transition", tr("detected", "assessing")),
        (40, "joined", {"source": "manual"}),
        (42, "mitigated", MITIGATED),
        (50, "approval_requested", {"action": "replace", "nodes": ["127.0.0.4"], "reason": "wipe_and_replace"}),
        (300, "healed", {"targets": [NODE], "waited_s": 250.0}),
    )
    return build_postmortem(incident("recovering"), events)


def phases(pm: PostMortem) -> list[tuple[str, str | None, str, str]]:
    """(name, at, since previous, since detection) per phase, durations as the report shows them."""
    fmt = format_duration
    iso = [p.at.isoformat() if p.at else None for p in pm.phases]
    return [(p.name, t, fmt(p.since_previous_s), fmt(p.since_detection_s)) for p, t in zip(pm.phases, iso, strict=True)]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(
            hint_only,
            [
                ("detected", "2025-03-01T10:00:00+00:00", "—", "0s"),
                ("confirmed", "2025-03-01T10:00:12+00:00", "12s", "12s"),
                ("mitigated", "2025-03-01T10:00:25+00:00", "13s", "25s"),
                ("healed", "2025-03-01T10:02:10+00:00", "1m 45s", "2m 10s"),
                ("hints drained", "2025-03-01T10:03:00+00:00", "50s", "3m 00s"),
                ("repaired", None, "—", "—"),
                ("verified", "2025-03-01T10:03:30+00:00", "30s", "3m 30s"),  # since hints drained: repair skipped
                (CLOSED, "2025-03-01T10:03:45+00:00", "15s", "3m 45s"),
            ],
            id="hint-only",
        ),
        pytest.param(
            repair_incident,
            [
                ("detected", "2025-03-01T10:00:00+00:00", "—", "0s"),  # no suspected_at: the opened event
                ("confirmed", "2025-03-01T10:00:00+00:00", "0s", "0s"),
                ("mitigated", "2025-03-01T10:00:05+00:00", "5s", "5s"),
                ("healed", "2025-03-01T10:01:05+00:00", "1m 00s", "1m 05s"),  # note: waited 1m 00s (59.6s)
                ("hints drained", "2025-03-01T10:04:10+00:00", "3m 05s", "4m 10s"),
                ("repaired", "2025-03-01T10:08:00+00:00", "3m 50s", "8m 00s"),
                ("verified", "2025-03-01T10:10:00+00:00", "2m 00s", "10m 00s"),  # the converged after_fix pass
                (CLOSED, "2025-03-01T10:10:20+00:00", "20s", "10m 20s"),
            ],
            id="repair",
        ),
        pytest.param(
            rejected,
            [
                ("detected", "2025-03-01T10:00:00+00:00", "—", "0s"),
                ("confirmed", "2025-03-01T10:00:00+00:00", "0s", "0s"),
                ("mitigated", "2025-03-01T10:00:10+00:00", "10s", "10s"),
                ("healed", None, "—", "—"),
                ("hints drained", None, "—", "—"),
                ("repaired", None, "—", "—"),
                ("verified", None, "—", "—"),
                (CLOSED, "2025-03-01T10:25:02+00:00", "24m 52s", "25m 02s"),
            ],
            id="escalated",
        ),
        pytest.param(
            still_open,
            [
                ("detected", "2025-03-01T10:00:00+00:00", "—", "0s"),
                ("confirmed", "2025-03-01T10:00:00+00:00", "0s", "0s"),
                ("mitigated", "2025-03-01T10:00:42+00:00", "42s", "42s"),
                ("healed", "2025-03-01T10:05:00+00:00", "4m 18s", "5m 00s"),
                ("hints drained", None, "—", "—"),
                ("repaired", None, "—", "—"),
                ("verified", None, "—", "—"),
                (CLOSED, None, "—", "—"),
            ],
            id="still-open",
        ),
    ],
)
def test_phase_times_and_durations(build: Any, expected: list[tuple[str, str | None, str, str]]) -> None:
    pm = build()
    assert [p.name for p in pm.phases] == list(PHASES)
    assert phases(pm) == expected


@pytest.mark.parametrize(
    ("build", "statuses", "total"),
    [
        (hint_only, ["done"] * 5 + ["skipped", "done", "done"], 225.0),
        (repair_incident, ["done"] * 8, 620.0),
        (rejected, ["done"] * 3 + ["skipped"] * 4 + ["done"], 1502.0),
        (still_open, ["done"] * 4 + ["pending"] * 4, None),
    ],
    ids=["hint-only", "repair", "escalated", "still-open"],
)
def test_progress_table_marks_phases_that_did_not_happen(build: Any, statuses: list[str], total: float | None) -> None:
    pm = build()
    rows = progress_table(pm)
    assert [r["status"] for r in rows] == statuses
    assert [r["phase"] for r in rows] == list(PHASES)
    assert all((r["at"] == "") == (r["status"] != "done") for r in rows)
    assert pm.total_s == total


def test_hint_only_figures() -> None:
    pm = hint_only()
    assert pm.state == "resolved" and pm.repairs == () and pm.approvals == () and pm.escalations == ()
    (h,) = pm.hints
    assert (h.state, h.elapsed_s, h.reasons) == ("drained", 50.3, ())
    assert h.figures == (("outstanding at start", 120), ("outstanding at end", 0))
    assert pm.phases[2].note == "degraded" and pm.phases[3].note == "waited 1m 44s"
    assert pm.follow_up is not None and pm.follow_up.result is None
    assert pm.follow_up.due_at == datetime(2025, 3, 1, 11, 3, 31, tzinfo=UTC)
    assert pm.context == f"trigger detector/node_down on {NODE}; plan wait_for_hints"
    assert len(pm.timeline) == len(HINT_ONLY) and pm.timeline[0][2:4] == ("opened", "detector")


def test_repair_figures_and_every_verification_pass() -> None:
    pm = repair_incident()
    (h,) = pm.hints
    assert (h.state, h.reasons) == ("stalled", ("did not go down for 120s",))
    (r,) = pm.repairs
    assert r.state == "done" and r.elapsed_s == 229.6
    assert dict(r.figures) == {"segments": 12, "ran": 11, "reconciled": 1, "already_done": 0, "failed": 0}
    assert [(v.pass_name, v.verdict, v.rows_compared, v.mismatches) for v in pm.verifications] == [
        ("initial", "diverged", 5000, 27),
        ("after_fix", "converged", 5000, 0),
        ("follow_up", "converged", 5100, 0),
    ]
    first, fixed, _ = pm.verifications
    assert first.details == (f"replicas {NODE}, 127.0.0.4",)
    assert fixed.details == ("fixed by read_repair: 27 key(s) (27 keys differ)", "preview in sync: yes")
    assert pm.phases[PHASES.index("verified")].note == "converged (after_fix pass)"
    assert pm.follow_up is not None and pm.follow_up.result is pm.verifications[2]


def test_long_key_lists_are_capped() -> None:
    first = repair_incident().verifications[0]
    assert first.keys == (
        ("missing", 2, ("user:900", "user:901")),
        ("different", 25, tuple(DIFFERENT[:KEY_CAP])),
    )  # the empty "extra" list is left out
    md = render_markdown(repair_incident())
    assert f"  - different (25): {', '.join(DIFFERENT[:KEY_CAP])}, … and 15 more" in md
    assert DIFFERENT[KEY_CAP] not in md


def test_without_a_converged_pass_the_last_verdict_is_shown() -> None:
    events = timeline(
        (0, "opened", {}),
        (10, "verified", CONVERGED | {"verdict": "cannot_verify", "unverified": 3}),
        (20, "verified", CONVERGED | {"verdict": "diverged", "pass": "after_fix", "mismatches": 2}),
    )
    pm = build_postmortem(incident("verifying"), events)
    verified = pm.phases[PHASES.index("verified")]
    assert (verified.at, verified.note) == (at(20), "diverged (after_fix pass)")
    assert "Verification: *diverged (after_fix pass)*" in render_slack_summary(pm)


def test_rejected_approval_and_escalation_named_once() -> None:
    pm = rejected()
    (a,) = pm.approvals
    assert (a.requested_at, a.decided_at, a.approved, a.approver, a.note) == (
        at(920),
        at(1500),
        False,
        "bob",
        "disk being swapped",
    )
    assert a.request == f"replace {NODE} (node failed and did not come back), deadline 2025-03-01T11:15:20+00:00"
    assert pm.escalations == ((at(1502), f"replacement rejected by bob: {NODE} not replaced"),)
    md = render_markdown(pm)
    assert "rejected by bob at 2025-03-01T10:25:00Z (disk being swapped)" in md
    assert f"- [ ] Follow up the escalation: replacement rejected by bob: {NODE} not replaced" in md
    assert "**Summary:** Final state escalated, 25m 02s from detection to close." in md


def test_an_expired_approval_says_so_and_a_pending_one_waits() -> None:
    events = timeline(
        (0, "opened", {}),
        (5, "approval_requested", {"action": "replace", "nodes": [NODE], "reason": "dead"}),
        (65, "approval_decided", {"approved": False, "approver": "approval-timeout", "note": ""}),
        (70, "approval_requested", {"action": "replace", "nodes": [NODE], "reason": "dead again"}),
    )
    pm = build_postmortem(incident("recovering"), events)
    assert [(a.requested_at, a.decided_at, a.approved) for a in pm.approvals] == [
        (at(5), at(65), False),
        (at(70), None, None),
    ]
    md = render_markdown(pm)
    assert "expired at 2025-03-01T10:01:05Z (nobody decided)" in md
    assert f"replace {NODE} (dead again): waiting for a decision" in md


def test_a_decision_without_a_waiting_request_keeps_the_earlier_one() -> None:
    events = timeline(
        (0, "opened", {}),
        (5, "approval_requested", {"action": "replace", "nodes": [NODE], "reason": "dead"}),
        (9, "approval_decided", {"approved": True, "approver": "alice"}),
        (30, "approval_decided", {"approved": False, "approver": "bob"}),  # its request is not in the timeline
    )
    pm = build_postmortem(incident("recovering"), events)
    assert [(a.requested_at, a.request, a.approved, a.approver) for a in pm.approvals] == [
        (at(5), f"replace {NODE} (dead)", True, "alice"),
        (None, "?", False, "bob"),
    ]


def test_still_open_incident_reports_elapsed_time_and_unreached_phases() -> None:
    pm = still_open()
    assert pm.total_s is None and pm.elapsed_s == 300.0
    md = render_markdown(pm)
    assert "**Summary:** Still open (recovering), 5m 00s from detection to the last event." in md
    assert "| hints drained | — | — | — | not reached |" in md
    assert "| closed | — | — | — | not reached |" in md
    assert "_No hints recorded._" in md and "_No repair recorded._" in md and "_No verification recorded._" in md
    assert "replace 127.0.0.4 (wipe_and_replace): waiting for a decision" in md


def test_handed_back_escalation_is_not_closed() -> None:
    events = timeline(
        (0, "opened", {}),
        (10, "transition", tr("assessing", "escalated", reasons=["plan: escalate", "two nodes down"])),
        (600, "transition", tr("escalated", "assessing", by="alice")),
    )
    pm = build_postmortem(incident("assessing"), events)
    assert pm.phases[-1].at is None and pm.total_s is None
    assert pm.escalations == ((at(10), "plan: escalate; two nodes down"),)


def test_markdown_sections_and_phase_table() -> None:
    md = render_markdown(hint_only())
    assert md.startswith("# Post-mortem: cluster lab, incident inc-20250301-100015-abc\n")
    assert "**Summary:** Final state resolved, 3m 45s from detection to close." in md
    assert "| Phase | At (UTC) | + since previous | + since detection | Note |" in md
    assert "| hints drained | 2025-03-01T10:03:00Z | 50s | 3m 00s | drained |" in md
    assert "| repaired | — | — | — | did not happen |" in md
    assert "| closed | 2025-03-01T10:03:45Z | 15s | 3m 45s | resolved |" in md
    assert "**drained** in 50s; outstanding at start 120; outstanding at end 0" in md
    assert "_No repair recorded._" in md and "_No approval requested._" in md
    assert "Follow-up verification due 2025-03-01T11:03:31Z (flow run fr-follow): not run yet." in md
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Phases",
        "## Hints",
        "## Repair",
        "## Verification",
        "## Approvals",
        "## Escalations",
        "## Timeline",
        "## Root cause",
        "## Action items",
    ]
    root = md.split("## Root cause\n", 1)[1]
    assert root.startswith("\n_To be completed by the incident owner._\n")
    assert md.rstrip().endswith("## Action items\n\n- [ ] ...")
    section = md.split("## Timeline")[1].split("## Root cause")[0]
    timeline_rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| # |")]
    assert len(timeline_rows) == len(HINT_ONLY)
    assert "| 3 | 2025-03-01T10:00:17Z | transition | flow-run/1f0c | detected → assessing: by=flow-run/1f0c |" in md


def test_pipes_are_escaped_and_long_event_data_cut() -> None:
    events = timeline((0, "opened", {"note": "a|b"}), (5, "custom_kind", {"blob": "x" * 500}))
    events[1]["actor"] = "ops|bot"
    md = render_markdown(build_postmortem(incident("detected"), events))
    row = next(line for line in md.splitlines() if line.startswith("| 2 |"))
    assert "ops\\|bot" in row
    assert row.replace("\\|", "").count("|") == 6  # five cells, whatever the data
    data_cell = row.replace("\\|", "").split("|")[5].strip()
    assert len(data_cell) == SUMMARY_CAP and data_cell.endswith("…")
    assert "note=a\\|b" in md


def test_slack_summary_is_short_and_names_state_durations_and_verdict() -> None:
    text = render_slack_summary(repair_incident())
    assert text.splitlines()[:2] == [
        "*Post-mortem: incident inc-20250301-100015-abc on lab*",
        "*Final state resolved, 10m 20s from detection to close*",
    ]
    assert "hints drained +3m 05s · repaired +3m 50s · verified +2m 00s · closed +20s" in text
    assert "Verification: *converged (after_fix pass)*" in text
    assert "Follow-up verification 2025-03-01T11:10:00Z: converged" in text
    assert len(text) <= SLACK_LIMIT


def test_slack_summary_stays_under_the_limit_and_escapes() -> None:
    ask = "<!here> & " + "x" * 200
    asks = [(10.0 + i, "approval_requested", {"nodes": [f"10.0.0.{i}"], "reason": ask}) for i in range(40)]
    events = timeline((0, "opened", {}), *asks, (100, "escalated", {"reason": "y" * 5000}))
    text = render_slack_summary(build_postmortem(incident("escalated"), events))
    assert len(text) == SLACK_LIMIT and text.endswith("…")
    assert "Approval: request 10.0.0.0 (&lt;!here&gt; &amp; xxx" in text and "<!here>" not in text
    assert "Verification: *none yet*" in text


def test_iso_strings_and_any_event_order_give_the_same_post_mortem() -> None:
    """Events as tasks.incident.incident_events returns them: times as ISO strings."""
    as_strings = [e | {"at": e["at"].isoformat()} for e in reversed(HINT_ONLY)]
    inc = incident("resolved", at(225), suspected_at=T0.isoformat(), confirmed_at="2025-03-01T10:00:12")  # naive: UTC
    assert build_postmortem(inc, as_strings) == hint_only()


def test_an_unreadable_event_time_is_refused() -> None:
    events = timeline((0, "opened", {}))
    events[0]["at"] = "yesterday"
    with pytest.raises(ValueError, match="event 1 \\(opened\\) has no readable time"):
        build_postmortem(incident("detected"), events)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0s"),
        (42.4, "42s"),
        (59.6, "1m 00s"),
        (185, "3m 05s"),
        (3599, "59m 59s"),
        (3725, "1h 02m"),
        (90_000, "1d 01h"),
        (-5, "-5s"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_split_between_regions_and_the_clock_spread_are_reported() -> None:
    inc = incident("resolved", at(300))
    inc["plan"] = {**inc["plan"], "regions": {"kind": "split", "sides": [["dc1"], ["dc2"]]}}
    events = timeline(
        (15, "opened", {"source": "detector", "kind": "node_down", "nodes": [NODE]}),
        (200, "verified", {**CONVERGED, "clock_spread_ms": 1.8, "clock_skew": {NODE: {"skew_ms": 0.9}}}),
        (300, "transition", tr("verifying", "resolved")),
    )
    pm = build_postmortem(inc, events)
    assert pm.context.endswith("; regions split (sides: dc1 | dc2)")
    assert "node clocks within 1.8 ms of each other" in pm.verifications[0].details
    assert "node clocks within 1.8 ms" in render_markdown(pm)


def test_the_automation_level_of_the_steps_is_in_the_context() -> None:
    events = timeline(
        (0, "opened", {}),
        (5, "transition", tr("detected", "assessing", level="propose")),
        (9, "approval_decided", {"approved": True, "approver": "alice", "level": "propose"}),
        (20, "transition", tr("assessing", "mitigating", level="act")),  # the cluster's level was raised meanwhile
        (30, "mitigated", {"policy": "degraded", "level": "act"}),
    )
    pm = build_postmortem(incident("mitigating"), events)
    assert pm.context.endswith("; automation level propose then act"), pm.context
    assert "automation level" not in build_postmortem(incident("mitigating"), events[:1]).context
