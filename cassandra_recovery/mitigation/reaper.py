"""Reaper's share of the mitigation: its active schedules and running repair runs paused while an incident owns the
cluster, and exactly those resumed when the incident gives the cluster back.

The ids are on the incident's timeline before anything is paused (`reaper_pause`: what will be paused) and after
(`reaper_paused`: what Reaper changed), so a crash in between still resumes them; what was paused before the
incident (by a person, another tool) is never resumed. Reaper unreachable or refusing: reported, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from cassandra_recovery.clients.reaper import ReaperClient, ReaperError, ReaperItem
from cassandra_recovery.contracts import ReaperStepDoc
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings

INTENT, PAUSED, RESUMED = "reaper_pause", "reaper_paused", "reaper_resumed"


class Reaper(Protocol):
    def schedules(self) -> list[ReaperItem]: ...

    def running_runs(self) -> list[ReaperItem]: ...

    def set_schedule_state(self, schedule_id: str, state: str) -> bool: ...

    def set_run_state(self, run_id: str, state: str) -> bool: ...


Timeline = Callable[[str, Mapping[str, Any]], object]  # records an event on the incident's timeline


def configured_reaper(cluster_id: str) -> ReaperClient | None:
    """The cluster's Reaper from the registry; None without one (or for a cluster the registry does not know)."""
    try:
        config = Settings().cluster(cluster_id).reaper
    except ConfigError:
        return None
    return ReaperClient(config) if config is not None else None


def _step() -> ReaperStepDoc:
    return {"schedules": [], "runs": [], "unchanged": [], "errors": []}


def pause_reaper(reaper: Reaper, record: Timeline) -> ReaperStepDoc:
    """Pause the ACTIVE schedules and the RUNNING runs; the intent, then the outcome, recorded on the timeline."""
    done = _step()
    try:
        schedules = [s.id for s in reaper.schedules() if s.state == "ACTIVE"]
        runs = [r.id for r in reaper.running_runs()]
    except ReaperError as e:
        done["errors"].append(f"listing: {e}")
        record(PAUSED, done)
        return done
    record(INTENT, {"schedules": schedules, "runs": runs})
    _apply(done, schedules, runs, "PAUSED", "PAUSED", reaper)
    record(PAUSED, done)
    return done


def resume_reaper(reaper: Reaper, events: Iterable[Mapping[str, Any]], record: Timeline) -> ReaperStepDoc:
    """Resume what this incident paused (its timeline says which), and nothing else; recorded on the timeline."""
    schedules, runs = paused_by_incident(events)
    done = _step()
    _apply(done, schedules, runs, "ACTIVE", "RUNNING", reaper)
    record(RESUMED, done)
    return done


def _apply(done: ReaperStepDoc, schedules: list[str], runs: list[str], s_state: str, r_state: str, r: Reaper) -> None:
    for sid in schedules:
        try:
            (done["schedules"] if r.set_schedule_state(sid, s_state) else done["unchanged"]).append(sid)
        except ReaperError as e:
            done["errors"].append(f"schedule {sid}: {e}")
    for rid in runs:
        try:
            (done["runs"] if r.set_run_state(rid, r_state) else done["unchanged"]).append(rid)
        except ReaperError as e:
            done["errors"].append(f"run {rid}: {e}")


def paused_by_incident(events: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(schedule ids, run ids) this incident paused and has not resumed yet: what Reaper changed, or, when an
    intent has no outcome after it (a crash in between), everything the intent named."""
    schedules: dict[str, None] = {}
    runs: dict[str, None] = {}
    intent: Mapping[str, Any] | None = None
    for e in events:
        kind, data = e.get("kind"), e.get("data") or {}
        if kind == INTENT:
            if intent is not None:  # an earlier intent never got its outcome: all it named may be paused
                schedules.update(dict.fromkeys(intent.get("schedules") or ()))
                runs.update(dict.fromkeys(intent.get("runs") or ()))
            intent = data
        elif kind == PAUSED:
            schedules.update(dict.fromkeys(data.get("schedules") or ()))
            runs.update(dict.fromkeys(data.get("runs") or ()))
            intent = None
        elif kind == RESUMED:
            for sid in data.get("schedules") or ():
                schedules.pop(sid, None)
            for rid in data.get("runs") or ():
                runs.pop(rid, None)
            for gone in data.get("unchanged") or ():  # already active again: nothing left to resume
                schedules.pop(gone, None)
                runs.pop(gone, None)
    if intent is not None:
        schedules.update(dict.fromkeys(intent.get("schedules") or ()))
        runs.update(dict.fromkeys(intent.get("runs") or ()))
    return list(schedules), list(runs)
