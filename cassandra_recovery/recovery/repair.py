"""The segmented repair engine: runs checkpointed segments one at a time, reconciling with Cassandra on resume.

Evidence of what ran comes from Cassandra: the coordinator's `system_views.repairs` decides whether an
interrupted segment finished, is still running or failed; `system_distributed.parent_repair_history` holds
each repair's requested and successful ranges for the report and for tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import CommandInterrupted, Nodetool
from cassandra_recovery.clients.repair_activity import RepairActivity
from cassandra_recovery.contracts import ForeignRepairDoc, RepairReportDoc
from cassandra_recovery.controls.killswitch import AutomationStopped, KillSwitch, Switch
from cassandra_recovery.errors import CommandError, NodeUnreachableError, ParseError
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.incident.side_effects import Acting, SideEffectLog
from cassandra_recovery.logic.repair_sessions import SessionMatch, SessionVerdict, session_verdict
from cassandra_recovery.logic.segments import Segment, SegmentState, after_failure
from cassandra_recovery.parsers.repair import parse_repair
from cassandra_recovery.progress import counted
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints, SegmentRecord
from cassandra_recovery.recovery.foreign import SegmentGate
from cassandra_recovery.settings import ClusterConfig

log = logging.getLogger(__name__)
# JMX operation behind "cancel a running full repair" (nodetool has no verb for it; SJK reaches any MBean).
_TERMINATE = ("sjk", "mx", "-b", "org.apache.cassandra.db:type=StorageService", "-mc", "-op")
_TERMINATE_OP = "forceTerminateAllRepairSessions"
_UNFENCED = Fence.unfenced("repair-engine")  # a repair outside any incident or schedule (tests, the lab)


@dataclass(frozen=True)
class EngineConfig:
    kind: str = "full"  # or "incremental"
    segment_timeout_s: float = 600.0
    max_attempts: int = 3
    inflight_wait_s: float = 300.0  # how long an in-flight session found on resume (or a busy node) is waited for
    poll_s: float = 1.0
    halt_check_s: float = 5.0  # how often a running repair asks the kill switch: it is cancelled within about this


@dataclass
class RepairReport:
    run_key: str
    kind: str
    resumed: bool
    segments: int
    already_done: int = 0  # done before this run started (a resumed run skips them)
    ran: int = 0  # repairs this run started
    reconciled: int = 0  # interrupted segments Cassandra had finished: marked done without running again
    waited_in_flight: int = 0  # interrupted segments still running in Cassandra, waited for
    cancelled: int = 0
    retries: int = 0
    failed: list[str] = field(default_factory=list)
    escalated: bool = False
    reasons: list[str] = field(default_factory=list)
    parent_ids: list[str] = field(default_factory=list)
    foreign_repairs: list[ForeignRepairDoc] = field(default_factory=list)  # started elsewhere, seen before a segment
    elapsed_s: float = 0.0

    def as_dict(self) -> RepairReportDoc:
        return cast(RepairReportDoc, asdict(self))  # asdict is untyped; the fields above are the doc's


class RepairEngine:
    def __init__(
        self,
        cluster: ClusterConfig,
        cql: CqlClient,
        checkpoints: RepairCheckpoints,
        config: EngineConfig = EngineConfig(),
        nodetool: Nodetool | None = None,
        progress: Callable[[str], None] = log.info,
        before_segment: Callable[[Segment, float | None], None] | None = None,
        fence: Fence = _UNFENCED,
        effects: SideEffectLog | None = None,
        halt: Callable[[], Switch | None] | None = None,
        activity: RepairActivity | None = None,
        own_elsewhere: Callable[[], Iterable[Segment]] | None = None,
    ):
        """before_segment(segment, seconds the previous segment took): called before each segment runs; the
        scheduled repair paces itself there (intensity) and waits out blackouts. `fence`: every checkpoint write
        and every repair started commits only while it holds; `effects`: where each repair and cancellation is
        logged (fenced) with its interval, each start refused under the cluster's kill switch. `halt`: the kill
        switch when it is on, asked while a repair runs (default with `effects`: the cluster's switch in the same
        database); when it answers, the repair is cancelled inside Cassandra and the run raises AutomationStopped.
        `activity`: how the repairs replicas take part in are read before each segment (default: the system_views
        repair tables, no nodetool); `own_elsewhere`: this tool's segments in flight in other runs (checkpoints), so
        that none is taken for another tool's repair."""
        self.before_segment = before_segment
        self.fence, self.effects = fence, effects
        if halt is None and effects is not None:
            switches = KillSwitch(effects.pool)
            halt = lambda: switches.stopped(cluster.id)  # noqa: E731 - the default watcher
        self.halt = halt
        self.cluster = cluster
        self.cql = cql
        self.checkpoints = checkpoints
        self.config = config
        self.nodetool = nodetool or Nodetool(cluster)
        self.progress = progress
        self._run_key = ""
        self._gate = SegmentGate(activity or RepairActivity(cql), own_elsewhere)

    def run(self, run_key: str, segments: Sequence[Segment]) -> RepairReport:
        t0 = time.monotonic()
        self._run_key = run_key
        run = self.checkpoints.start_or_resume(run_key, self.cluster.id, self.config.kind, segments, self.fence)
        recs = run.segments
        rep = RepairReport(run_key, run.kind, resumed=not run.created, segments=len(recs))
        rep.already_done = sum(r.state is SegmentState.DONE for r in recs)
        if rep.resumed:
            self.progress(f"resuming repair run {run_key}: {rep.already_done}/{len(recs)} segments already done")
        last: float | None = None
        done = rep.already_done
        for rec in recs:
            if rec.state is SegmentState.DONE:
                continue
            if rec.state is SegmentState.FAILED:
                rep.failed.append(rec.segment.key)
                rep.reasons.append(f"segment {rec.seq} failed earlier: {rec.last_error}")
                rep.escalated = True
                break
            if self.before_segment is not None:
                self.before_segment(rec.segment, last)
            began = time.monotonic()
            if not self._segment(rec, len(recs), rep):
                rep.escalated = True
                break
            last = time.monotonic() - began
            done += 1  # the segment's own line said it; a bar moves on
            counted(self.progress, f"repair {run_key}: segments", done, len(recs), line="")
        self.checkpoints.finish(run_key, "escalated" if rep.escalated else "done", self.fence)
        rep.elapsed_s = round(time.monotonic() - t0, 1)
        return rep

    # one segment -------------------------------------------------------------------------------
    def _segment(self, rec: SegmentRecord, total: int, rep: RepairReport) -> bool:
        seg, label = rec.segment, f"segment {rec.seq + 1}/{total} {rec.segment.keyspace} {rec.segment.range_text}"
        if rec.state is SegmentState.RUNNING:  # interrupted: ask Cassandra before running it again
            outcome = self._reconcile(rec, rep)
            if outcome is SessionVerdict.SUCCEEDED:
                self.progress(f"{label}: finished in Cassandra while we were away; not repeated")
                return True
        while True:
            busy = self._wait_until_free(seg, rep)
            if busy is not None:  # not started, so still pending: a later run tries it again
                rep.failed.append(seg.key)
                rep.reasons.append(f"{label}: {busy}; not started")
                self.progress(f"{label}: {busy}; not started")
                return False
            rec = self.checkpoints.mark_running(self._run_key, rec.seq, self.fence)
            attempts = rec.attempts
            rep.ran += 1
            started = time.monotonic()
            self.progress(f"{label}: repairing on {seg.coordinator} (attempt {attempts})")
            try:
                with self._acting("repair_segment", seg, seq=rec.seq, attempt=attempts) as act:
                    ok, parent, error = self._repair(seg, rec.started_at)
                    act.outcome, act.detail = ("done" if ok else "failed"), {"parent_id": parent, "error": error[:500]}
            except AutomationStopped as e:  # not started, or cancelled: pending again for the run after the switch
                self.checkpoints.mark_failed(self._run_key, rec.seq, str(e), False, self.fence)
                self.progress(f"{label}: {e}")
                raise
            if ok:
                self.checkpoints.mark_done(self._run_key, rec.seq, parent, self.fence)
                if parent:
                    rep.parent_ids.append(parent)
                self.progress(f"{label}: done in {time.monotonic() - started:.1f}s")
                return True
            decision = after_failure(attempts, self.config.max_attempts, error)
            self.checkpoints.mark_failed(self._run_key, rec.seq, error, not decision.retry, self.fence)
            self.progress(f"{label}: {decision.reason}")
            if not decision.retry:
                rep.failed.append(seg.key)
                rep.reasons.append(f"{label}: {decision.reason}")
                return False
            rep.retries += 1
            if self.config.kind == "incremental":
                self._cleanup_incremental(seg)

    @contextmanager
    def _acting(self, action: str, seg: Segment, stoppable: bool = True, **extra: Any) -> Iterator[Acting]:
        """The action on the fenced log (refused, before anything starts, when the fence no longer holds or, when
        `stoppable`, while the kill switch is on: a cancellation is never stoppable)."""
        if self.effects is None:
            yield Acting(0)
            return
        target = {"run_key": self._run_key, "keyspace": seg.keyspace, "range": seg.range_text} | extra
        halts_for = self.cluster.id if stoppable else None
        with self.effects.acting(self.fence, action, target | {"coordinator": seg.coordinator}, halts_for) as act:
            yield act

    def _repair(self, seg: Segment, since: datetime | None) -> tuple[bool, str | None, str]:
        args = ["repair", *(["-full"] if self.config.kind == "full" else []), "-st", str(seg.start)]
        args += ["-et", str(seg.end), seg.keyspace]
        switch: list[Switch] = []
        try:
            proc = self.nodetool.run(
                seg.coordinator,
                *args,
                timeout_s=self.config.segment_timeout_s,
                check=False,
                interrupt=None if self.halt is None else lambda: self._halted(switch),
                check_every_s=self.config.halt_check_s,
            )
        except CommandInterrupted:  # the kill switch: the session is stopped inside Cassandra, as Reaper's pause does
            self._cancel(seg)
            left = self._wait_in_flight(seg, since, wait_s=self.config.halt_check_s)
            self.progress(f"{seg.key}: cancelled for the kill switch ({left.detail})")
            raise AutomationStopped(switch[0], f"repair of {seg.keyspace} {seg.range_text}", cancelled=True) from None
        except CommandError:  # timed out: nodetool was killed, the session may still run inside Cassandra
            return self._ask_cassandra(seg, since, f"timed out after {self.config.segment_timeout_s:.0f}s", 0.0)
        try:
            out = parse_repair(proc.stdout, proc.stderr)
        except ParseError as e:
            return self._ask_cassandra(
                seg, since, f"unreadable nodetool repair output: {e}", self.config.inflight_wait_s
            )
        if proc.returncode == 0 and out.success:
            return True, out.parent_session_id, ""
        said = out.error or out.stderr_error or f"nodetool exit code {proc.returncode}"
        return self._ask_cassandra(seg, since, said, self.config.inflight_wait_s)

    def _halted(self, found: list[Switch]) -> bool:
        assert self.halt is not None  # noqa: S101 - only asked when set
        try:
            switch = self.halt()
        except Exception as e:  # noqa: BLE001 - PostgreSQL away: nobody can set the switch there either; ask again
            log.warning(
                "kill switch not read while a repair runs (asked again in %.0fs): %s", self.config.halt_check_s, e
            )
            return False
        if switch is not None:
            found.append(switch)
        return switch is not None

    def _ask_cassandra(
        self, seg: Segment, since: datetime | None, said: str, wait_s: float
    ) -> tuple[bool, str | None, str]:
        """nodetool reported a failure (or said nothing): what the coordinator recorded decides, so a retry never
        repeats a repair that Cassandra completed (nodetool can lose the notification of a finished repair)."""
        match = self._wait_in_flight(seg, since, wait_s=wait_s)
        if match.verdict is SessionVerdict.SUCCEEDED:
            log.warning("%s: nodetool said %r but %s: counted as done", seg.key, said, match.detail)
            return True, match.repair_id, ""
        if match.verdict is SessionVerdict.IN_FLIGHT:
            self._cancel(seg)
        return False, match.repair_id, f"{said} ({match.detail})"

    def _reconcile(self, rec: SegmentRecord, rep: RepairReport) -> SessionVerdict:
        seg = rec.segment
        match = self._wait_in_flight(seg, rec.started_at, wait_s=0.0)
        if match.verdict is SessionVerdict.IN_FLIGHT:
            rep.waited_in_flight += 1
            self.progress(f"{seg.key}: {match.detail}; waiting up to {self.config.inflight_wait_s:.0f}s")
            match = self._wait_in_flight(seg, rec.started_at, wait_s=self.config.inflight_wait_s)
            if match.verdict is SessionVerdict.IN_FLIGHT:
                self._cancel(seg)
                rep.cancelled += 1
        if match.verdict is SessionVerdict.SUCCEEDED:
            self.checkpoints.mark_done(self._run_key, rec.seq, match.repair_id, self.fence)
            rep.reconciled += 1
            if match.repair_id:
                rep.parent_ids.append(match.repair_id)
        elif self.config.kind == "incremental":
            self._cleanup_incremental(seg)  # a failed or cancelled incremental session leaves pending data behind
        if self.effects is not None:  # the interrupted run's session is over: its interval on the log closes
            self.effects.close_reconciled_repair(self.fence, {"run_key": self._run_key, "seq": rec.seq})
        return match.verdict

    def _wait_in_flight(self, seg: Segment, since: datetime | None, wait_s: float) -> SessionMatch:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                match = session_verdict(self.cql.repairs(seg.coordinator), seg, since)
            except NodeUnreachableError as e:
                match = SessionMatch(SessionVerdict.NONE, None, f"coordinator unreachable: {e}")
            if match.verdict is not SessionVerdict.IN_FLIGHT or time.monotonic() >= deadline:
                return match
            time.sleep(self.config.poll_s)

    def _wait_until_free(self, seg: Segment, rep: RepairReport) -> str | None:
        """At most one repair per node: wait while any replica takes part in a repair, ours or one started elsewhere
        (Reaper, cron, an operator), never starting beside it. None once they are free; the reason, naming the
        foreign repairs, when still busy at the deadline (the run escalates, it does not raise)."""
        busy = self._gate.wait_until_free(
            seg, rep.parent_ids, self.config.inflight_wait_s, self.config.poll_s * 5, self.progress
        )
        rep.foreign_repairs = self._gate.foreign_seen()
        return busy

    def _cancel(self, seg: Segment) -> None:
        """Stop repairs coordinated by the segment's coordinator (full and incremental), then clean up."""
        self.progress(f"{seg.key}: cancelling the repair still running on {seg.coordinator}")
        with self._acting("repair_cancel", seg, stoppable=False) as act:
            try:
                self.nodetool.run(seg.coordinator, *_TERMINATE, _TERMINATE_OP, timeout_s=60)
            except CommandError as e:
                log.warning("could not terminate repairs on %s: %s", seg.coordinator, e)
                act.outcome = f"failed: {str(e)[:200]}"
        if self.config.kind == "incremental":
            self._cleanup_incremental(seg)

    def _cleanup_incremental(self, seg: Segment) -> None:
        for node in seg.replicas:
            try:
                self.nodetool.run(node, "repair_admin", "cleanup", timeout_s=120)
            except CommandError as e:
                log.warning("repair_admin cleanup on %s failed: %s", node, e)


def repair_history(cql: CqlClient, parent_ids: Sequence[str]) -> list[dict[str, Any]]:
    """parent_repair_history rows for these repairs (by primary key: cheap on a long history)."""
    import uuid

    out = []
    for pid in parent_ids:
        rows = cql.execute(
            "SELECT parent_id, keyspace_name, requested_ranges, successful_ranges, started_at, finished_at,"
            " exception_message FROM system_distributed.parent_repair_history WHERE parent_id = %s",
            (uuid.UUID(pid),),
        )
        out.extend(rows)
    return out
