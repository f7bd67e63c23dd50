"""When scheduled repair may run (pure): weekly blackouts and maintenance windows in local time, intensity, retries.

A span such as "Mon-Fri 08:00-18:00" covers, on each listed day, the instants whose wall clock reads from the start
up to (not including) the end; an end at or before the start runs into the next day ("daily 22:30-02:00").
Local times become instants through zoneinfo, so a span is shorter or longer on DST change days. A boundary that
falls in a DST gap is the transition instant; an ambiguous start takes its first occurrence and an ambiguous end
its second, so a span covers the whole repeated hour rather than leaving a hole in it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * _MINUTES_PER_DAY
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
# Far enough ahead that a free minute lost to one week's DST gap shows up in the following week.
_HORIZON = timedelta(days=15)


@dataclass(frozen=True)
class Blackout:
    """A weekly span in local time; blackouts forbid repair in it, maintenance windows allow segment starts in it."""

    text: str  # the spec as written, whitespace collapsed: shown in reports
    days: frozenset[int]  # weekdays the span starts on, 0 = Monday .. 6 = Sunday
    start_minute: int  # minutes after local midnight, 0..1439
    end_minute: int  # 1..1440; at or before start_minute means the span ends the next day

    @property
    def crosses_midnight(self) -> bool:
        return self.end_minute <= self.start_minute

    def __str__(self) -> str:
        return self.text


Window = Blackout  # maintenance windows share the syntax and the type


class RetryVerdict(NamedTuple):
    retry: bool
    escalate: bool
    reason: str


def _day(token: str, spec: str, what: str) -> int:
    low = token.lower()
    for names in (DAY_NAMES, _FULL_NAMES):
        if low in names:
            return names.index(low)
    raise ValueError(f"{what} {spec!r}: bad day {token!r} (expected Mon..Sun, a range like Mon-Fri, or daily)")


def _days(part: str, spec: str, what: str) -> frozenset[int]:
    if part.lower() == "daily":
        return frozenset(range(7))
    days: set[int] = set()
    for item in part.split(","):
        first, sep, last = item.partition("-")
        a = _day(first, spec, what)
        b = _day(last, spec, what) if sep else a
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))  # "Fri-Mon" wraps the week
    return frozenset(days)


def _minute(token: str, spec: str, what: str, *, end: bool) -> int:
    m = _TIME.fullmatch(token)
    hours, minutes = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    total = hours * 60 + minutes
    if not m or minutes > 59 or total > _MINUTES_PER_DAY or (total == _MINUTES_PER_DAY and not end):
        hint = "24:00 only as an end" if end else "start 00:00..23:59"
        raise ValueError(f"{what} {spec!r}: bad time {token!r} (expected HH:MM, {hint})")
    return total


def parse_blackout(spec: str, what: str = "blackout") -> Blackout:
    """One "DAYS HH:MM-HH:MM" spec; ValueError names the part that is wrong."""
    parts = spec.split()
    if len(parts) != 2:
        raise ValueError(f"{what} {spec!r}: expected 'DAYS HH:MM-HH:MM', e.g. 'Mon-Fri 08:00-18:00'")
    day_part, time_part = parts
    days = _days(day_part, spec, what)
    first, sep, last = time_part.partition("-")
    if not sep:
        raise ValueError(f"{what} {spec!r}: bad time range {time_part!r} (expected HH:MM-HH:MM)")
    start = _minute(first, spec, what, end=False)
    end = _minute(last, spec, what, end=True)
    if start == end:
        raise ValueError(f"{what} {spec!r}: empty range {time_part!r} (start equals end; use 00:00-24:00 for all day)")
    return Blackout(" ".join(parts), days, start, end)


def parse_blackouts(specs: Sequence[str]) -> list[Blackout]:
    return [parse_blackout(s) for s in specs]


def parse_windows(specs: Sequence[str]) -> list[Window]:
    return [parse_blackout(s, "maintenance window") for s in specs]


def zone(tz: str | ZoneInfo | None = "UTC") -> ZoneInfo:
    """The IANA zone the specs are read in (None = UTC); ValueError for an unknown name."""
    if isinstance(tz, ZoneInfo):
        return tz
    name = tz or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}") from e


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now_utc must be timezone-aware, got naive {now.isoformat()}")
    return now.astimezone(UTC)


def iso(t: datetime) -> str:
    """An instant as reports show it: 2026-11-27T17:00:00Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_utc(local: datetime, z: ZoneInfo, *, late: bool) -> datetime:
    early = local.replace(tzinfo=z, fold=0).astimezone(UTC)
    later = local.replace(tzinfo=z, fold=1).astimezone(UTC)
    if early == later:
        return early
    if early < later:  # ambiguous (clocks went back): both instants read `local`
        return later if late else early
    # a gap (clocks went forward): `local` never shows; the first instant past it is the transition
    lo, hi = later, early
    after = hi.astimezone(z).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        lo, hi = (lo, mid) if mid.astimezone(z).utcoffset() == after else (mid, hi)
    return hi.replace(microsecond=0)


Occurrence = tuple[datetime, datetime, Blackout]


def _occurrences(spans: Sequence[Blackout], z: ZoneInfo, lo: datetime, hi: datetime) -> list[Occurrence]:
    """Every occurrence (start, end, span) in UTC that overlaps [lo, hi), by start."""
    out: list[Occurrence] = []
    day: date = lo.astimezone(z).date() - timedelta(days=2)
    last = hi.astimezone(z).date() + timedelta(days=1)
    while day <= last:
        midnight = datetime.combine(day, time())
        for s in spans:
            if day.weekday() not in s.days:
                continue
            end_minute = s.end_minute + (_MINUTES_PER_DAY if s.crosses_midnight else 0)
            a = _to_utc(midnight + timedelta(minutes=s.start_minute), z, late=False)
            b = _to_utc(midnight + timedelta(minutes=end_minute), z, late=True)
            if a < b and b > lo and a < hi:  # a span wholly inside a DST gap does not occur that day
                out.append((a, b, s))
        day += timedelta(days=1)
    return sorted(out, key=lambda o: (o[0], o[1]))


def _containing(occ: Sequence[Occurrence], t: datetime) -> list[Occurrence]:
    return [o for o in occ if o[0] <= t < o[1]]


def _chain_end(occ: Sequence[Occurrence], t: datetime) -> datetime:
    """The first instant at or after t in no occurrence: overlapping and adjacent ones chain."""
    while ends := [b for _, b, _ in _containing(occ, t)]:
        t = max(ends)
    return t


def _covers_week(blackouts: Sequence[Blackout]) -> bool:
    pieces: list[tuple[int, int]] = []
    for s in blackouts:
        length = (s.end_minute - s.start_minute) % _MINUTES_PER_DAY or _MINUTES_PER_DAY
        for d in s.days:
            a = d * _MINUTES_PER_DAY + s.start_minute
            pieces += [(a, min(a + length, _MINUTES_PER_WEEK)), (0, max(a + length - _MINUTES_PER_WEEK, 0))]
    reached = 0
    for a, b in sorted(pieces):
        if a > reached:
            return False
        reached = max(reached, b)
    return reached >= _MINUTES_PER_WEEK


def in_blackout(blackouts: Sequence[Blackout], tz: str | ZoneInfo | None, now_utc: datetime) -> Blackout | None:
    """The blackout now falls in (the first listed if several), or None."""
    now = _utc(now_utc)
    hits = {o[2] for o in _containing(_occurrences(blackouts, zone(tz), now, now + timedelta(minutes=1)), now)}
    return next((b for b in blackouts if b in hits), None)


def _no_time(detail: str) -> ValueError:
    return ValueError(f"no time left to repair: {detail}")


def next_allowed(blackouts: Sequence[Blackout], tz: str | ZoneInfo | None, now_utc: datetime) -> datetime:
    """The first instant (UTC) at or after now outside every blackout; ValueError if blackouts leave no time."""
    now = _utc(now_utc)
    if _covers_week(blackouts):
        raise _no_time("the blackouts cover the whole week")
    t = _chain_end(_occurrences(blackouts, zone(tz), now, now + _HORIZON), now)
    if t >= now + _HORIZON - timedelta(days=1):
        raise _no_time(f"the blackouts leave no time before {iso(t)}")
    return t


def _in_window(occ: Sequence[Occurrence], t: datetime) -> Blackout | None:
    hits = _containing(occ, t)
    return hits[0][2] if hits else None


def next_start(
    windows: Sequence[Window], blackouts: Sequence[Blackout], tz: str | ZoneInfo | None, now_utc: datetime
) -> datetime:
    """The first instant (UTC) at or after now inside a maintenance window (any, if none are configured) and outside
    every blackout; ValueError if there is none within two weeks."""
    now = _utc(now_utc)
    if not windows:
        return next_allowed(blackouts, tz, now)
    z = zone(tz)
    window_occ = _occurrences(windows, z, now, now + _HORIZON)
    t = now
    while True:
        t = next_allowed(blackouts, z, t)
        if _in_window(window_occ, t) is not None:
            return t
        later = [a for a, _, _ in window_occ if a > t]
        if not later or later[0] >= now + _HORIZON - timedelta(days=1):
            raise _no_time("every maintenance window falls inside a blackout")
        t = later[0]


def may_start(
    windows: Sequence[Window], blackouts: Sequence[Blackout], tz: str | ZoneInfo | None, now_utc: datetime
) -> tuple[bool, str]:
    """Whether a segment may start now, and why (for the report)."""
    now = _utc(now_utc)
    z = zone(tz)
    blocking = in_blackout(blackouts, z, now)
    if blocking is not None:
        until = next_allowed(blackouts, z, now)
        reason = f"inside blackout {blocking} until {iso(until)}"
        if windows and (start := next_start(windows, blackouts, z, now)) != until:
            reason += f"; next start {iso(start)}"
        return False, reason
    if not windows:
        return True, "outside every blackout; no maintenance window configured"
    window = _in_window(_occurrences(windows, z, now, now + timedelta(minutes=1)), now)
    if window is None:
        names = ", ".join(str(w) for w in windows)
        return (
            False,
            f"outside every maintenance window ({names}); next start {iso(next_start(windows, blackouts, z, now))}",
        )
    return True, f"inside maintenance window {window}"


def pause_after(segment_seconds: float, intensity: float) -> float:
    """Cassandra Reaper's intensity: after a segment of t seconds pause t * (1 - intensity) / intensity seconds."""
    if not 0 < intensity <= 1:  # also rejects NaN
        raise ValueError(f"intensity must be in (0, 1], got {intensity}")
    if not (segment_seconds >= 0 and math.isfinite(segment_seconds)):
        raise ValueError(f"segment_seconds must be a finite number >= 0, got {segment_seconds}")
    return segment_seconds * (1 - intensity) / intensity


def retry_decision(attempts_done: int, max_attempts: int, last_error: str) -> RetryVerdict:
    """Retry a failed segment until `max_attempts` attempts were made, then stop and escalate to a human."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if attempts_done < 0:
        raise ValueError(f"attempts_done must be >= 0, got {attempts_done}")
    error = last_error.strip() or "unknown error"
    if attempts_done == 0:
        return RetryVerdict(True, False, f"no attempt yet (of {max_attempts}); starting")
    if attempts_done < max_attempts:
        return RetryVerdict(True, False, f"attempt {attempts_done} of {max_attempts} failed ({error}); retrying")
    return RetryVerdict(False, True, f"{attempts_done} of {max_attempts} attempts failed, last: {error}; escalating")
