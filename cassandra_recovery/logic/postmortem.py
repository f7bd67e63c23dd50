"""Post-mortem of an incident from its timeline (pure: no I/O, no clock; an open incident is measured up to its last
event): phases, hints, repair, verification, approvals, escalations; Markdown, Slack and progress-table renderings."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from cassandra_recovery.logic.incident_states import TERMINAL, IncidentState

PHASES = ("detected", "confirmed", "mitigated", "healed", "hints drained", "repaired", "verified", "closed")
KEY_CAP = 10  # keys named per category and verification pass
SUMMARY_CAP = 120  # characters of an event's data shown in the timeline
SLACK_LIMIT = 2900
EXPIRED = "approval-timeout"  # the approver flows/replacement.py records when nobody decided in time


@dataclass(frozen=True)
class Phase:
    name: str
    at: datetime | None  # None: did not happen (yet)
    since_previous_s: float | None  # since the previous phase that happened
    since_detection_s: float | None
    note: str = ""


@dataclass(frozen=True)
class Step:  # a hint drain (event "hints_drained") or a repair ("repaired"), as its report tells it
    at: datetime
    state: str  # hints: drained, stalled, timeout...; repair: done or escalated
    elapsed_s: float | None
    figures: tuple[tuple[str, int], ...]  # hints: outstanding at start/end; repair: segments, ran, reconciled...
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Verification:
    at: datetime
    pass_name: str  # initial, after_fix, follow_up
    verdict: str  # converged, diverged, cannot_verify
    rows_compared: int
    mismatches: int
    unverified: int
    keys: tuple[tuple[str, int, tuple[str, ...]], ...]  # (missing/extra/different, how many, the first KEY_CAP)
    details: tuple[str, ...]  # what was fixed, the preview's answer, the replicas read


@dataclass(frozen=True)
class Approval:
    requested_at: datetime | None
    request: str  # "replace 127.0.0.4 (node failed and did not come back), deadline 2025-01-01T10:00:00+00:00"
    decided_at: datetime | None = None
    approved: bool | None = None  # None: still waiting
    approver: str = ""
    note: str = ""


@dataclass(frozen=True)
class FollowUp:
    due_at: datetime | None
    flow_run_id: str
    result: Verification | None  # the last "follow_up" pass, once it ran


@dataclass(frozen=True)
class PostMortem:
    incident_id: str
    cluster_id: str
    state: str
    context: str  # trigger source/kind, the nodes named, the plan
    phases: tuple[Phase, ...]  # one per PHASES, in that order
    total_s: float | None  # detection to close; None while open
    elapsed_s: float | None  # detection to the last event
    hints: tuple[Step, ...]
    repairs: tuple[Step, ...]
    verifications: tuple[Verification, ...]
    approvals: tuple[Approval, ...]
    escalations: tuple[tuple[datetime, str], ...]  # (first seen, reason), one per reason
    follow_up: FollowUp | None
    timeline: tuple[tuple[int, datetime, str, str, str], ...]  # every event: (seq, at, kind, actor, data summary)
    foreign_repairs: tuple[str, ...] = ()  # repairs started elsewhere (Reaper, cron, an operator), one line each


def _dt(value: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)) if isinstance(at, datetime) else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return len(value) if isinstance(value, list) else round(value) if isinstance(value, int | float) else 0


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _secs(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _summary(kind: str, data: Mapping[str, Any]) -> str:  # an event's data on one line, at most SUMMARY_CAP chars
    def kv(m: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in m.items())

    text = kv(data)
    if kind == "transition":
        text = f"{data.get('from')} → {data.get('to')}" + (f": {kv(_map(data['data']))}" if data.get("data") else "")
    return text if len(text) <= SUMMARY_CAP else text[: SUMMARY_CAP - 1] + "…"


def _verification(at: datetime, d: Mapping[str, Any]) -> Verification:
    keys, fix, preview = _map(d.get("keys")), _map(d.get("fixed")), _map(d.get("preview"))
    named = tuple((c, len(keys[c]), _strs(keys[c][:KEY_CAP])) for c in ("missing", "extra", "different") if keys.get(c))
    why = f" ({fix['why']})" if fix.get("why") else ""
    details = [f"fixed by {fix.get('method', '?')}: {_int(fix.get('keys'))} key(s){why}"] if fix else []
    if isinstance(preview.get("in_sync"), bool):
        details.append(f"preview in sync: {'yes' if preview['in_sync'] else 'no'}")
    details += [f"replicas {', '.join(_strs(d['replicas']))}"] if d.get("replicas") else []
    scope = _map(d.get("scope"))
    if scope.get("scoped"):
        details.append(f"outage-scoped: {_int(scope.get('changed_keys'))} key(s) changed since {scope.get('since')}")
    elif scope:
        details.append(f"full pass: {scope.get('why')}")
    if isinstance(d.get("clock_spread_ms"), int | float):  # last-write-wins depends on the nodes' clocks
        details.append(f"node clocks within {d['clock_spread_ms']} ms of each other")
    r, m, u = (_int(d.get(k)) for k in ("rows_compared", "mismatches", "unverified"))
    return Verification(at, str(d.get("pass", "")), str(d.get("verdict", "")), r, m, u, named, tuple(details))


def _foreign(plan: Mapping[str, Any], data: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The foreign repairs the assessment (its plan) and the repair reports (`repaired` events) named, once each."""
    named: dict[str, str] = {}
    for source in (plan, *data):
        for f in source.get("foreign_repairs") or ():
            if isinstance(f, Mapping) and f.get("id"):
                named.setdefault(str(f["id"]), str(f.get("described") or f["id"]))
    return tuple(named.values())


def _to_step(at: datetime, d: Mapping[str, Any], repair: bool) -> Step:
    samples = [_int(s[1]) for s in d.get("samples") or () if isinstance(s, list | tuple) and len(s) == 2]
    if repair:
        figures = [(k, _int(d.get(k))) for k in ("segments", "ran", "reconciled", "already_done", "failed")]
        state, reasons = "escalated" if d.get("escalated") else "done", _strs(d.get("reasons"))
    else:
        figures = [("outstanding at start", samples[0]), ("outstanding at end", samples[-1])] if samples else []
        state, reasons = str(d.get("state", "?")), (str(d["reason"]),) if d.get("reason") else ()
    elapsed = d.get("elapsed_s")
    return Step(at, state, float(elapsed) if isinstance(elapsed, int | float) else None, tuple(figures), reasons)


def build_postmortem(incident: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> PostMortem:
    """ValueError when an event's time cannot be read (the store always records one)."""
    evs: list[tuple[datetime, str, Mapping[str, Any], Mapping[str, Any]]] = []
    for e in sorted(events, key=lambda e: int(e["seq"])):
        if (at := _dt(e.get("at"))) is None:
            raise ValueError(f"event {e.get('seq')} ({e.get('kind')}) has no readable time: {e.get('at')!r}")
        evs.append((at, str(e.get("kind", "")), _map(e.get("data")), e))

    def of(kind: str) -> list[tuple[datetime, Mapping[str, Any]]]:
        return [(at, d) for at, k, d, _ in evs if k == kind]

    opened = of("opened")[:1]
    trigger = _map(incident.get("trigger")) or (opened[0][1] if opened else {})
    opened_at = opened[0][0] if opened else _dt(incident.get("opened_at"))
    detected = _dt(trigger.get("suspected_at")) or opened_at
    verifications = tuple(_verification(at, d) for at, d in of("verified"))
    hints = tuple(_to_step(at, d, False) for at, d in of("hints_drained"))
    repairs = tuple(_to_step(at, d, True) for at, d in of("repaired"))
    closed: tuple[datetime | None, str] = (None, "")
    approvals, escalations = list[Approval](), dict[str, tuple[datetime, str]]()
    for at, kind, d, _ in evs:
        if kind == "transition":  # the last one decides: an escalated incident may be handed back
            closed = (at, str(d.get("to"))) if str(d.get("to")) in TERMINAL else (None, "")
        if kind == "escalated" or (kind == "transition" and d.get("to") == IncidentState.ESCALATED):
            src = d if kind == "escalated" else _map(d.get("data"))
            why = str(src.get("reason") or "; ".join(_strs(src.get("reasons"))) or "(no reason given)")
            escalations.setdefault(why, (at, why))
        elif kind == "approval_requested":
            ask = f"{d.get('action', 'request')} {', '.join(_strs(d.get('nodes')))} ({d.get('reason', '?')})"
            approvals.append(Approval(at, ask + (f", deadline {d['deadline']}" if d.get("deadline") else "")))
        elif kind == "approval_decided":  # answers the latest request, as flows/replacement.py pairs them
            base = approvals.pop() if approvals and approvals[-1].approved is None else Approval(None, "?")
            who, note = str(d.get("approver", "")), str(d.get("note") or "")
            approvals.append(replace(base, decided_at=at, approved=bool(d.get("approved")), approver=who, note=note))
    mitigated, healed = of("mitigated")[:1], of("healed")[:1]
    follow_ups = [v for v in verifications if v.pass_name == "follow_up"]  # noqa: S105 - reported apart, often after close
    main = [v for v in verifications if v not in follow_ups] or follow_ups
    good = [v for v in main if v.verdict == "converged"] or main
    stamps: list[tuple[datetime | None, str]] = [
        (detected, ""), (_dt(trigger.get("confirmed_at")) or opened_at, ""),
        (mitigated[0][0], str(mitigated[0][1].get("policy", ""))) if mitigated else (None, ""),
        (healed[0][0], f"waited {format_duration(_int(healed[0][1].get('waited_s')))}") if healed else (None, ""),
        (hints[-1].at, hints[-1].state) if hints else (None, ""),
        (repairs[-1].at, f"{repairs[-1].state}, {repairs[-1].figures[0][1]} segment(s)") if repairs else (None, ""),
        (good[-1].at, f"{good[-1].verdict} ({good[-1].pass_name} pass)") if good else (None, ""), closed,
    ]  # fmt: skip
    phases, previous = list[Phase](), None
    for name, (at, note) in zip(PHASES, stamps, strict=True):
        phases.append(Phase(name, at, _secs(previous, at), _secs(detected, at), note))
        previous = at or previous
    follow_up = None
    for _, d in of("follow_up_scheduled")[-1:]:
        follow_up = FollowUp(_dt(d.get("at")), str(d.get("flow_run_id", "")), follow_ups[-1] if follow_ups else None)
    plan, nodes = _map(incident.get("plan")), ", ".join(_strs(trigger.get("nodes"))) or "no node named"
    context = f"trigger {trigger.get('source', '?')}/{trigger.get('kind', '?')} on {nodes}; plan {plan.get('action')}"
    if levels := _levels(evs):
        context += f"; automation level {' then '.join(levels)}"
    if regions := _map(plan.get("regions")):
        sides = " | ".join(", ".join(_strs(side)) for side in regions.get("sides") or [])
        context += f"; regions {regions.get('kind')} (sides: {sides})"
    return PostMortem(
        str(incident.get("id", "")), str(incident.get("cluster_id", "")), str(incident.get("state", "")), context,
        tuple(phases), _secs(detected, closed[0]), _secs(detected, evs[-1][0] if evs else None), hints, repairs,
        verifications, tuple(approvals), tuple(escalations.values()), follow_up,
        tuple((int(e["seq"]), at, k, str(e.get("actor", "")), _summary(k, d)) for at, k, d, e in evs),
        _foreign(plan, (d for _, d in of("repaired"))),
    )  # fmt: skip


def _levels(evs: Iterable[tuple[datetime, str, Mapping[str, Any], Mapping[str, Any]]]) -> list[str]:
    """The automation levels the steps were taken under, in the order they changed."""
    out: list[str] = []
    for _, kind, d, _ in evs:
        level = _map(d.get("data")).get("level") if kind == "transition" else d.get("level")
        if isinstance(level, str) and (not out or out[-1] != level):
            out.append(level)
    return out


def format_duration(seconds: float | None) -> str:
    """42s, 3m 05s, 1h 02m, 2d 03h; "—" for None."""
    if seconds is None:
        return "—"
    sign, s = "-" if seconds < 0 else "", round(abs(seconds))
    if s < 3600:
        return f"{sign}{s}s" if s < 60 else f"{sign}{s // 60}m {s % 60:02d}s"
    return f"{sign}{s // 3600}h {s % 3600 // 60:02d}m" if s < 86400 else f"{sign}{s // 86400}d {s % 86400 // 3600:02d}h"


def format_time(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else "—"


def progress_table(pm: PostMortem) -> list[dict[str, str]]:
    """done; skipped when a later phase is done (it will not happen any more); pending otherwise."""
    done = [p.at is not None for p in pm.phases]
    status = ["done" if d else "skipped" if any(done[i + 1 :]) else "pending" for i, d in enumerate(done)]
    return [
        {"phase": p.name, "status": st, "at": format_time(p.at) if p.at else ""}
        for p, st in zip(pm.phases, status, strict=True)
    ]


def _headline(pm: PostMortem) -> str:
    if pm.total_s is not None:
        return f"Final state {pm.state}, {format_duration(pm.total_s)} from detection to close"
    return f"Still open ({pm.state}), {format_duration(pm.elapsed_s)} from detection to the last event"


def _pass(v: Verification) -> str:
    text = f"{v.pass_name} pass: **{v.verdict}**, {v.rows_compared} row(s) compared, {v.mismatches} mismatch(es)"
    return text + (f", {v.unverified} unverified" if v.unverified else "") + "".join(f"; {d}" for d in v.details)


def _decision(a: Approval) -> str:
    when, note = format_time(a.decided_at), f" ({a.note})" if a.note else ""
    if a.approved is None or a.approver == EXPIRED:
        return "waiting for a decision" if a.approved is None else f"expired at {when} (nobody decided)"
    return f"{'approved' if a.approved else 'rejected'} by {a.approver} at {when}{note}"


def _step(s: Step) -> str:
    parts = [f"**{s.state}** in {format_duration(s.elapsed_s)}", *(f"{k.replace('_', ' ')} {n}" for k, n in s.figures)]
    return f"- {format_time(s.at)}: " + "; ".join([*parts, *s.reasons])


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def render_markdown(pm: PostMortem) -> str:
    status = {r["phase"]: r["status"] for r in progress_table(pm)}
    out = [f"# Post-mortem: cluster {pm.cluster_id}, incident {pm.incident_id}", "", f"**Summary:** {_headline(pm)}."]
    out += [f"{pm.context[0].upper()}{pm.context[1:]}.", "", "## Phases", ""]
    out += [_row("Phase", "At (UTC)", "+ since previous", "+ since detection", "Note"), "|---|---|---|---|---|"]
    for p in pm.phases:
        note = p.note if p.at else ("did not happen" if status[p.name] == "skipped" else "not reached")
        durations = (format_duration(p.since_previous_s), format_duration(p.since_detection_s))
        out.append(_row(p.name, format_time(p.at), *durations, note))
    for title, steps in (("Hints", pm.hints), ("Repair", pm.repairs)):
        out += ["", f"## {title}", "", *([_step(s) for s in steps] or [f"_No {title.lower()} recorded._"])]
    if pm.foreign_repairs:  # Reaper, cron, an operator: the repair waited for them, or escalated because of them
        out += ["", "## Repairs started elsewhere", "", *(f"- {line}" for line in pm.foreign_repairs)]
    out += ["", "## Verification", ""] + ([] if pm.verifications else ["_No verification recorded._"])
    for v in pm.verifications:
        out.append(f"- {format_time(v.at)}: {_pass(v)}")
        out += [f"  - {c} ({n}): {', '.join(ks)}" + (f", … and {n - len(ks)} more" if n > len(ks) else "")
                for c, n, ks in v.keys]  # fmt: skip
    if f := pm.follow_up:
        res = _pass(f.result) if f.result else "not run yet"
        out += ["", f"Follow-up verification due {format_time(f.due_at)} (flow run {f.flow_run_id or '?'}): {res}."]
    asked = [f"- {format_time(a.requested_at)}: {a.request}: {_decision(a)}" for a in pm.approvals]
    out += ["", "## Approvals", "", *(asked or ["_No approval requested._"]), "", "## Escalations", ""]
    out += [f"- {format_time(at)}: {why}" for at, why in pm.escalations] or ["_None._"]
    out += ["", "## Timeline", "", _row("#", "At (UTC)", "Kind", "Actor", "Data"), "|---|---|---|---|---|"]
    out += [_row(seq, format_time(at), kind, actor, data) for seq, at, kind, actor, data in pm.timeline]
    out += ["", "## Root cause", "", "_To be completed by the incident owner._", "", "## Action items", ""]
    out += [f"- [ ] Follow up the escalation: {why}" for _, why in pm.escalations] + ["- [ ] ...", ""]
    return "\n".join(out)


def render_slack_summary(pm: PostMortem) -> str:
    """Slack mrkdwn, at most SLACK_LIMIT characters."""
    done = [p for p in pm.phases if p.at]
    steps = [f"{p.name} +{format_duration(p.since_previous_s)}" for p in done[1:]]
    lines = [f"*Post-mortem: incident {pm.incident_id} on {pm.cluster_id}*", f"*{_headline(pm)}*"]
    lines += [f"Phases: {done[0].name} {format_time(done[0].at)} · {' · '.join(steps)}"] if done else []
    if skipped := [r["phase"] for r in progress_table(pm) if r["status"] == "skipped"]:
        lines.append(f"Did not happen: {', '.join(skipped)}")
    lines.append(f"Verification: *{pm.phases[PHASES.index('verified')].note or 'none yet'}*")
    lines += [f"Approval: {a.request}: {_decision(a)}" for a in pm.approvals]
    lines += [f"Escalated: {why[:300]}" for _, why in pm.escalations]
    if pm.foreign_repairs:
        lines.append(f"Repairs started elsewhere: {len(pm.foreign_repairs)}; {pm.foreign_repairs[0][:300]}")
    if f := pm.follow_up:
        lines.append(f"Follow-up verification {format_time(f.due_at)}: {f.result.verdict if f.result else 'pending'}")
    text = "\n".join(lines).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= SLACK_LIMIT else text[: SLACK_LIMIT - 1] + "…"
