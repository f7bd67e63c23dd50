"""The outage-scoped proof (its I/O): which keys PostgreSQL changed while a node may have been missing writes,
grouped into small token ranges that the verifier then reads on every replica, as it reads the chunks of a full
pass. Its cost follows the writes missed, not the table (logic/scoped_proof.py decides; this module gathers).

What it cannot see: keys written to the cache by any path other than a change of the orders table (a direct
Cassandra write, a restore). The follow-up verification's full pass reads the whole table and catches those.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.logic.durations import parse_duration_ms
from cassandra_recovery.logic.replication import TokenRange
from cassandra_recovery.logic.scoped_proof import (
    Margins,
    ScopedChunks,
    commitlog_loss_s,
    full_pass_cost,
    group_tokens,
    missed_since,
)
from cassandra_recovery.logic.verify_plan import Chunk
from cassandra_recovery.verification.truth import SourceOfTruth

log = logging.getLogger(__name__)
RING_TOKENS = 2**64
# Cassandra's own defaults, used (and said) when a node's settings cannot be read.
DEFAULT_WRITE_TIMEOUT_MS = 2000
DEFAULT_COMMITLOG_PERIOD_MS = 10000


@dataclass
class ScopedPlan:
    """The chunks of the proof, or None with the reason a full pass is needed instead."""

    outage_seen: datetime
    since: datetime | None
    margins: Margins | None
    chunks: list[Chunk] | None
    keys: int = 0
    estimated_rows: float = 0.0
    why: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scoped": self.chunks is not None,
            "outage_seen": self.outage_seen.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "margins_s": None if self.margins is None else self.margins.__dict__,
            "changed_keys": self.keys if self.chunks is not None else None,  # not counted when not scoped
            "ranges": None if self.chunks is None else len(self.chunks),
            "estimated_rows": round(self.estimated_rows),
            "why": self.why,
            "notes": self.notes,
        }


def _setting_ms(cql: CqlClient, observer: str, names: tuple[str, ...]) -> int | None:
    """A duration setting of the observer node in ms, under its 5.0 name or its older `_in_ms` one."""
    for name in names:
        rows = cql.execute_on(observer, "SELECT value FROM system_views.settings WHERE name = %s", (name,))
        if rows and rows[0]["value"] not in (None, "", "null"):
            raw = str(rows[0]["value"]).strip()
            return int(raw) if raw.isdigit() else parse_duration_ms(raw)
    return None


def read_margins(
    cql: CqlClient, observer: str, observation_gap_s: float, skew: dict[str, dict[str, Any]], pg_skew_s: float
) -> tuple[Margins, list[str]]:
    """The window's margins from the cluster's own settings (the observer's: the lab and most clusters set them
    alike) and the measured clock skews; notes say what fell back to Cassandra's defaults."""
    notes: list[str] = []
    try:
        timeout_ms = _setting_ms(cql, observer, ("write_request_timeout", "write_request_timeout_in_ms"))
        period_ms = _setting_ms(cql, observer, ("commitlog_sync_period", "commitlog_sync_period_in_ms"))
        group_ms = _setting_ms(cql, observer, ("commitlog_sync_group_window", "commitlog_sync_group_window_in_ms"))
        rows = cql.execute_on(observer, "SELECT value FROM system_views.settings WHERE name = %s", ("commitlog_sync",))
        mode = str(rows[0]["value"]) if rows else "periodic"
    except (RecoveryError, ValueError) as e:
        notes.append(f"settings of {observer} not read ({e}): Cassandra's defaults assumed")
        timeout_ms, period_ms, group_ms, mode = None, None, None, "periodic"
    if timeout_ms is None:
        timeout_ms = DEFAULT_WRITE_TIMEOUT_MS
        notes.append(f"write_request_timeout unknown: {DEFAULT_WRITE_TIMEOUT_MS} ms assumed")
    if period_ms is None and mode.lower() != "batch":
        period_ms = DEFAULT_COMMITLOG_PERIOD_MS
        notes.append(f"commitlog_sync_period unknown: {DEFAULT_COMMITLOG_PERIOD_MS} ms assumed")
    readings = [abs(v["skew_ms"]) + v.get("uncertainty_ms", 0.0) for v in skew.values() if "skew_ms" in v]
    if len(readings) < len(skew):
        notes.append("a node's clock was not read: the skew counted is of those that answered")
    margins = Margins(
        observation_gap_s=observation_gap_s,
        write_timeout_s=timeout_ms / 1000,
        commitlog_loss_s=commitlog_loss_s(mode, period_ms or 0, group_ms or 0),
        clock_skew_s=(max(readings, default=0.0) / 1000) + abs(pg_skew_s),
    )
    return margins, notes


def postgres_skew_s(truth: SourceOfTruth) -> float:
    """PostgreSQL's clock (which dates the change log) minus ours, plus half the round trip."""
    t0 = time.time()
    theirs = truth.now().timestamp()
    t1 = time.time()
    return abs(theirs - (t0 + t1) / 2) + (t1 - t0) / 2


def plan_scope(
    truth: SourceOfTruth,
    ring: list[TokenRange],
    outage_seen: datetime,
    margins: Margins | None,
    merge_rows: int,
    full_chunks: int,
    max_rows: int | None = None,
) -> ScopedPlan:
    """The proof's chunks for changes committed since the window opened (`margins` None: at `outage_seen`
    exactly); a plan without chunks says why the full pass is needed instead."""
    since = outage_seen if margins is None else missed_since(outage_seen, margins)
    plan = ScopedPlan(outage_seen, since, margins, None)
    log_start = truth.change_log_start()
    if log_start is None:
        plan.why = "the orders table has no change log (run `cassandra-recovery db upgrade`)"
        return plan
    if log_start > since:
        plan.why = f"the change log starts at {log_start.isoformat()}, after the window opened"
        return plan
    if truth.truncated_since(since):
        plan.why = "the orders table was truncated inside the window"
        return plan
    total = truth.total_rows()
    budget = full_pass_cost(total, full_chunks, merge_rows)
    grouped: ScopedChunks | None = group_tokens(
        truth.changed_tokens(since), ring, total / RING_TOKENS, merge_rows, give_up_above=budget, max_rows=max_rows
    )
    if grouped is None:
        plan.why = "the keys changed in the window are spread over the table: a full pass costs less"
        return plan
    plan.chunks, plan.keys, plan.estimated_rows = grouped.chunks, grouped.keys, grouped.estimated_rows
    plan.why = f"{grouped.keys} key(s) changed since {since.isoformat()}, in {len(grouped.chunks)} range(s)"
    return plan
