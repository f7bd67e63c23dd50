"""Repair windows: spec parsing, blackouts across midnight, week wrap and DST, chaining, windows, intensity, retries."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cassandra_recovery.logic.repair_windows import (
    Blackout,
    in_blackout,
    iso,
    may_start,
    next_allowed,
    next_start,
    parse_blackout,
    parse_blackouts,
    parse_windows,
    pause_after,
    retry_decision,
    zone,
)
from tests import faults as F

pytestmark = pytest.mark.area("repair")

PARIS = "Europe/Paris"


def utc(text: str) -> datetime:
    """'2026-03-29 01:30' read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- parsing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "days", "start", "end"),
    [
        ("Mon-Fri 08:00-18:00", {0, 1, 2, 3, 4}, 480, 1080),
        ("Sat 00:00-24:00", {5}, 0, 1440),
        ("daily 22:30-02:00", set(range(7)), 1350, 120),
        ("DAILY 0:05-1:00", set(range(7)), 5, 60),
        ("Fri-Mon 01:00-02:00", {4, 5, 6, 0}, 60, 120),  # range wraps the week
        ("mon,wed,Sunday 10:00-11:00", {0, 2, 6}, 600, 660),
        ("  Tue   23:00-00:00 ", {1}, 1380, 0),  # ends at the next midnight
    ],
)
def test_specs_parse_into_days_and_minutes(spec: str, days: set[int], start: int, end: int) -> None:
    b = parse_blackout(spec)
    assert (b.days, b.start_minute, b.end_minute) == (frozenset(days), start, end)
    assert b.text == " ".join(spec.split()) == str(b)
    assert b.crosses_midnight == (end <= start)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Mon-Fry 08:00-18:00", "bad day 'Fry'"),
        ("Funday 08:00-18:00", "bad day 'Funday'"),
        ("Mon- 08:00-18:00", "bad day ''"),
        ("Mon 8-18", "bad time '8'"),
        ("Mon 25:00-26:00", "bad time '25:00'"),
        ("Mon 08:60-09:00", "bad time '08:60'"),
        ("Mon 24:00-02:00", "bad time '24:00'"),
        ("Mon 08:00-24:01", "bad time '24:01'"),
        ("Mon 08:00", "bad time range '08:00'"),
        ("Mon 08:00-08:00", "empty range '08:00-08:00'"),
        ("daily 00:00-00:00", "empty range"),
        ("Mon", "expected 'DAYS HH:MM-HH:MM'"),
        ("", "expected 'DAYS HH:MM-HH:MM'"),
        ("Mon 08:00-09:00 extra", "expected 'DAYS HH:MM-HH:MM'"),
    ],
)
def test_bad_specs_name_the_bad_part(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        parse_blackouts(["daily 01:00-02:00", spec])
    assert repr(spec) in str(err.value) and str(err.value).startswith("blackout ")


def test_window_errors_say_window_and_unknown_zones_are_rejected() -> None:
    with pytest.raises(ValueError, match="^maintenance window 'Mon 9:00-9:00': empty range"):
        parse_windows(["Mon 9:00-9:00"])
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
    assert str(zone(None)) == str(zone()) == "UTC"


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        in_blackout(parse_blackouts(["daily 01:00-02:00"]), "UTC", datetime(2026, 1, 1))


# --- in_blackout / next_allowed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "tz", "now", "blocking", "allowed"),
    [
        # office hours in Paris: winter is UTC+1, summer UTC+2
        (["Mon-Fri 08:00-18:00"], PARIS, "2026-11-27 10:00", "Mon-Fri 08:00-18:00", "2026-11-27 17:00"),
        (["Mon-Fri 08:00-18:00"], PARIS, "2026-07-01 06:30", "Mon-Fri 08:00-18:00", "2026-07-01 16:00"),
        (["Mon-Fri 08:00-18:00"], PARIS, "2026-07-01 05:59", None, "2026-07-01 05:59"),
        (["Mon-Fri 08:00-18:00"], PARIS, "2026-07-01 16:00", None, "2026-07-01 16:00"),  # the end is exclusive
        (["Mon-Fri 08:00-18:00"], PARIS, "2026-07-04 10:00", None, "2026-07-04 10:00"),  # Saturday
        # crossing midnight
        (["daily 22:30-02:00"], "UTC", "2026-05-05 22:29", None, "2026-05-05 22:29"),
        (["daily 22:30-02:00"], "UTC", "2026-05-05 23:00", "daily 22:30-02:00", "2026-05-06 02:00"),
        (["daily 22:30-02:00"], "UTC", "2026-05-06 01:59", "daily 22:30-02:00", "2026-05-06 02:00"),
        # week wrap: a Sunday-night blackout runs into Monday; "Fri-Mon" covers Sun
        (["Sun 22:00-02:00"], "UTC", "2026-05-04 01:00", "Sun 22:00-02:00", "2026-05-04 02:00"),
        (["Sun 22:00-02:00"], "UTC", "2026-05-05 01:00", None, "2026-05-05 01:00"),  # Tuesday: nothing from Monday
        (["Fri-Mon 00:00-24:00"], "UTC", "2026-05-03 12:00", "Fri-Mon 00:00-24:00", "2026-05-05 00:00"),
        # DST spring forward, Paris 2026-03-29 02:00 CET -> 03:00 CEST: 01:00-04:00 lasts two real hours
        (["daily 01:00-04:00"], PARIS, "2026-03-28 23:59", None, "2026-03-28 23:59"),
        (["daily 01:00-04:00"], PARIS, "2026-03-29 00:00", "daily 01:00-04:00", "2026-03-29 02:00"),
        (["daily 01:00-04:00"], PARIS, "2026-03-28 00:30", "daily 01:00-04:00", "2026-03-28 03:00"),  # the day before
        # a start inside the gap begins at the transition (01:00Z); 05:00 CEST is 03:00Z
        (["daily 02:30-05:00"], PARIS, "2026-03-29 00:59", None, "2026-03-29 00:59"),
        (["daily 02:30-05:00"], PARIS, "2026-03-29 01:00", "daily 02:30-05:00", "2026-03-29 03:00"),
        # a span wholly inside the gap does not happen that day, but does a week later
        (["Sun 02:00-03:00"], PARIS, "2026-03-29 00:59", None, "2026-03-29 00:59"),
        (["Sun 02:00-03:00"], PARIS, "2026-03-29 01:00", None, "2026-03-29 01:00"),
        (["Sun 02:00-03:00"], PARIS, "2026-04-05 00:30", "Sun 02:00-03:00", "2026-04-05 01:00"),
        # DST fall back, Paris 2026-10-25 03:00 CEST -> 02:00 CET: 01:00-04:00 lasts four real hours
        (["daily 01:00-04:00"], PARIS, "2026-10-24 22:59", None, "2026-10-24 22:59"),
        (["daily 01:00-04:00"], PARIS, "2026-10-24 23:00", "daily 01:00-04:00", "2026-10-25 03:00"),
        # an ambiguous end takes the second 02:30 (01:30Z), covering the repeated hour
        (["daily 00:00-02:30"], PARIS, "2026-10-25 01:15", "daily 00:00-02:30", "2026-10-25 01:30"),
        # an ambiguous start takes the first 02:30 (00:30Z); 05:00 CET is 04:00Z
        (["daily 02:30-05:00"], PARIS, "2026-10-25 00:29", None, "2026-10-25 00:29"),
        (["daily 02:30-05:00"], PARIS, "2026-10-25 00:30", "daily 02:30-05:00", "2026-10-25 04:00"),
    ],
)
def test_in_blackout_and_next_allowed(specs: list[str], tz: str, now: str, blocking: str | None, allowed: str) -> None:
    blackouts = parse_blackouts(specs)
    hit = in_blackout(blackouts, tz, utc(now))
    assert (hit.text if hit else None) == blocking
    result = next_allowed(blackouts, tz, utc(now))
    assert result == utc(allowed) and result.tzinfo is UTC
    assert in_blackout(blackouts, tz, result) is None


@pytest.mark.parametrize(
    ("specs", "now", "allowed"),
    [
        (["Mon 08:00-12:00", "Mon 11:00-14:00", "Mon 14:00-15:00"], "2026-05-04 09:00", "2026-05-04 15:00"),
        (["Mon 14:00-15:00", "Mon 08:00-12:00", "Mon 11:00-14:00"], "2026-05-04 11:30", "2026-05-04 15:00"),
        (["Sat 00:00-24:00", "Sun 00:00-24:00", "Mon 00:00-06:00"], "2026-05-02 10:00", "2026-05-04 06:00"),
        (["daily 22:00-02:00", "daily 01:00-03:00"], "2026-05-05 23:00", "2026-05-06 03:00"),
        # all week but the last minute of Sunday: the chain wraps the week and stops there
        (["Mon-Sat 00:00-24:00", "Sun 00:00-23:59"], "2026-05-04 12:00", "2026-05-10 23:59"),
    ],
)
def test_overlapping_and_adjacent_blackouts_chain(specs: list[str], now: str, allowed: str) -> None:
    blackouts = parse_blackouts(specs)
    assert in_blackout(blackouts, "UTC", utc(now)) is not None
    assert next_allowed(blackouts, "UTC", utc(now)) == utc(allowed)


def test_in_blackout_names_the_first_listed_of_overlapping_blackouts() -> None:
    blackouts = parse_blackouts(["Mon 11:00-14:00", "Mon 08:00-12:00"])
    hit = in_blackout(blackouts, "UTC", utc("2026-05-04 11:30"))
    assert hit is not None and hit.text == "Mon 11:00-14:00"


@pytest.mark.parametrize(
    "specs",
    [
        ["daily 00:00-24:00"],
        ["daily 12:00-00:00", "daily 00:00-12:00"],
        ["Mon-Fri 00:00-24:00", "Sat-Sun 00:00-24:00"],
        ["daily 18:00-09:00", "Mon-Sun 08:00-19:00"],
        ["Mon-Sun 12:01-12:00", "daily 12:00-12:01"],
    ],
)
def test_blackouts_covering_the_whole_week_leave_no_time(specs: list[str]) -> None:
    with pytest.raises(ValueError, match="no time left to repair"):
        next_allowed(parse_blackouts(specs), PARIS, utc("2026-03-29 00:30"))


def test_an_aware_non_utc_now_is_converted() -> None:
    blackouts = parse_blackouts(["Mon-Fri 08:00-18:00"])
    now = datetime(2026, 11, 27, 11, 0, tzinfo=timezone(timedelta(hours=1)))  # 10:00Z
    assert next_allowed(blackouts, PARIS, now) == utc("2026-11-27 17:00")


# --- maintenance windows ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("windows", "blackouts", "now", "ok", "reason", "start"),
    [
        (
            [],
            [],
            "2026-05-04 09:00",
            True,
            "outside every blackout; no maintenance window configured",
            "2026-05-04 09:00",
        ),
        (
            [],
            ["Mon-Fri 08:00-18:00"],
            "2026-11-27 10:00",
            False,
            "inside blackout Mon-Fri 08:00-18:00 until 2026-11-27T18:00:00Z",
            "2026-11-27 18:00",
        ),
        (
            ["daily 01:00-05:00"],
            [],
            "2026-05-04 02:00",
            True,
            "inside maintenance window daily 01:00-05:00",
            "2026-05-04 02:00",
        ),
        (
            ["daily 01:00-05:00"],
            [],
            "2026-05-04 05:00",
            False,
            "outside every maintenance window (daily 01:00-05:00); next start 2026-05-05T01:00:00Z",
            "2026-05-05 01:00",
        ),
        # the blackout ends inside the window: start right then
        (
            ["daily 01:00-05:00"],
            ["daily 00:00-02:00"],
            "2026-05-04 01:30",
            False,
            "inside blackout daily 00:00-02:00 until 2026-05-04T02:00:00Z",
            "2026-05-04 02:00",
        ),
        # the blackout outlasts the window: the next window after it
        (
            ["Mon-Fri 20:00-23:00", "Sat-Sun 00:00-24:00"],
            ["Sat 00:00-12:00", "Mon-Fri 19:00-22:00"],
            "2026-05-01 20:30",
            False,
            "inside blackout Mon-Fri 19:00-22:00 until 2026-05-01T22:00:00Z",
            "2026-05-01 22:00",
        ),
        (
            ["Sat-Sun 00:00-24:00"],
            ["Sat 00:00-12:00"],
            "2026-05-01 10:00",
            False,
            "outside every maintenance window (Sat-Sun 00:00-24:00); next start 2026-05-02T12:00:00Z",
            "2026-05-02 12:00",
        ),
        (
            ["Sat 00:00-06:00"],
            ["Sat 00:00-04:00", "Sat 03:00-05:00"],
            "2026-05-02 01:00",
            False,
            "inside blackout Sat 00:00-04:00 until 2026-05-02T05:00:00Z",
            "2026-05-02 05:00",
        ),
        (
            ["Sat 00:00-06:00"],
            ["Sat 05:00-08:00"],
            "2026-05-02 05:30",
            False,
            "inside blackout Sat 05:00-08:00 until 2026-05-02T08:00:00Z; next start 2026-05-09T00:00:00Z",
            "2026-05-09 00:00",
        ),
    ],
)
def test_may_start_and_next_start(
    windows: list[str], blackouts: list[str], now: str, ok: bool, reason: str, start: str
) -> None:
    w, b = parse_windows(windows), parse_blackouts(blackouts)
    assert may_start(w, b, "UTC", utc(now)) == (ok, reason)
    assert next_start(w, b, "UTC", utc(now)) == utc(start)
    assert may_start(w, b, "UTC", utc(start))[0] is True


def test_a_window_wholly_inside_a_blackout_leaves_no_time() -> None:
    windows, blackouts = parse_windows(["Sat 01:00-03:00"]), parse_blackouts(["Sat 00:00-04:00"])
    with pytest.raises(ValueError, match="every maintenance window falls inside a blackout"):
        next_start(windows, blackouts, "UTC", utc("2026-05-02 00:00"))


def test_the_report_reason_gives_the_blackout_end_in_utc() -> None:
    blackouts = parse_blackouts(["Mon-Fri 08:00-18:00"])
    assert may_start([], blackouts, PARIS, utc("2026-11-27 10:00")) == (
        False,
        "inside blackout Mon-Fri 08:00-18:00 until 2026-11-27T17:00:00Z",
    )


def test_windows_in_local_time_follow_dst() -> None:
    windows = parse_windows(["Sun 01:00-05:00"])
    # Paris, Sunday 2026-03-29: 01:00 CET is 00:00Z; the week after, 01:00 CEST is 23:00Z on Saturday
    assert next_start(windows, [], PARIS, utc("2026-03-28 12:00")) == utc("2026-03-29 00:00")
    assert next_start(windows, [], PARIS, utc("2026-03-29 03:00")) == utc("2026-04-04 23:00")
    ok, reason = may_start(windows, [], PARIS, utc("2026-03-29 02:59"))
    assert ok and reason == "inside maintenance window Sun 01:00-05:00"
    assert iso(utc("2026-03-29 02:59")) == "2026-03-29T02:59:00Z"


# --- intensity and retries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "intensity", "pause"),
    [(60, 1.0, 0.0), (60, 0.5, 60.0), (30, 0.25, 90.0), (10, 0.8, 2.5), (0, 0.1, 0.0), (120, 0.9, 120 / 9)],
)
def test_pause_follows_reaper_intensity(seconds: float, intensity: float, pause: float) -> None:
    assert pause_after(seconds, intensity) == pytest.approx(pause)


@pytest.mark.parametrize(
    ("seconds", "intensity", "message"),
    [
        (60, 0.0, "intensity"),
        (60, -0.5, "intensity"),
        (60, 1.01, "intensity"),
        (60, math.nan, "intensity"),
        (-1, 0.5, "segment_seconds"),
        (math.inf, 0.5, "segment_seconds"),
    ],
)
def test_pause_rejects_bad_input(seconds: float, intensity: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pause_after(seconds, intensity)


@pytest.mark.parametrize(
    ("done", "cap", "error", "retry", "escalate", "reason"),
    [
        (0, 3, "", True, False, "no attempt yet (of 3); starting"),
        (1, 3, "timeout", True, False, "attempt 1 of 3 failed (timeout); retrying"),
        (2, 3, "Repair session failed", True, False, "attempt 2 of 3 failed (Repair session failed); retrying"),
        (3, 3, "timeout", False, True, "3 of 3 attempts failed, last: timeout; escalating"),
        (4, 3, "  ", False, True, "4 of 3 attempts failed, last: unknown error; escalating"),
        (1, 1, "node down", False, True, "1 of 1 attempts failed, last: node down; escalating"),
    ],
)
@pytest.mark.fault(F.REPAIR_SEGMENT_STUCK)
def test_retry_cap(done: int, cap: int, error: str, retry: bool, escalate: bool, reason: str) -> None:
    verdict = retry_decision(done, cap, error)
    assert verdict == (retry, escalate, reason)
    assert (verdict.retry, verdict.escalate) == (retry, escalate) and verdict.retry != verdict.escalate


@pytest.mark.parametrize(("done", "cap"), [(1, 0), (-1, 3)])
def test_retry_rejects_bad_counts(done: int, cap: int) -> None:
    with pytest.raises(ValueError):
        retry_decision(done, cap, "x")


def test_blackout_is_a_hashable_value() -> None:
    a, b = parse_blackout("Mon-Fri 08:00-18:00"), parse_blackout("Mon-Fri   08:00-18:00")
    assert a == b and len({a, b}) == 1 and isinstance(a, Blackout)
