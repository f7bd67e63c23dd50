"""Hint drain: handoff enabled and not paused on every coordinator, then delivery watched until nothing is left."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import cast

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.jmx import JmxMetrics
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.contracts import HintDrainDoc
from cassandra_recovery.errors import CommandError, NodeUnreachableError, ParseError
from cassandra_recovery.logic.hint_drain import DrainState, DrainTracker
from cassandra_recovery.parsers.hints import parse_statushandoff
from cassandra_recovery.settings import ClusterConfig

log = logging.getLogger(__name__)


@dataclass
class DrainReport:
    targets: list[str]
    state: str
    elapsed_s: float
    handoff_actions: dict[str, list[str]]
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, pending files)
    reason: str = ""

    def as_dict(self) -> HintDrainDoc:
        return cast(HintDrainDoc, asdict(self))  # asdict is untyped; the fields above are the doc's


def ensure_handoff(cluster: ClusterConfig, coordinators: Sequence[str], nodetool: Nodetool) -> dict[str, list[str]]:
    """`enablehandoff` where it is off; `resumehandoff` everywhere (a paused dispatch is not observable through
    nodetool, and resuming is idempotent). Returns what was done per coordinator."""
    actions: dict[str, list[str]] = {}
    for node in coordinators:
        done: list[str] = []
        try:
            if not parse_statushandoff(nodetool.output(node, "statushandoff", timeout_s=60)):
                nodetool.run(node, "enablehandoff", timeout_s=60)
                done.append("enablehandoff")
            nodetool.run(node, "resumehandoff", timeout_s=60)
            done.append("resumehandoff")
        except (CommandError, ParseError) as e:
            done.append(f"error: {str(e).splitlines()[0]}")
        actions[cluster.node(node).address] = done
    return actions


def watch_drain(
    cluster: ClusterConfig,
    cql: CqlClient,
    targets: Sequence[str],
    quiet_s: float = 25.0,
    stall_s: float = 120.0,
    timeout_s: float = 900.0,
    poll_s: float = 2.0,
    progress: Callable[[str], None] = log.info,
    nodetool: Nodetool | None = None,
) -> DrainReport:
    """Until every live coordinator holds nothing for the targets (drained), delivery stops progressing
    (stalled: repair instead) or `timeout_s` passes (stalled too). Coordinators are sampled in parallel."""
    nt = nodetool or Nodetool(cluster)
    jmx = JmxMetrics(cluster, nt)
    # The other nodes hold the targets' hints. In a split between regions every node is a target and a
    # coordinator at once: then every node is watched (with only the others, nothing would be).
    others = [n.address for n in cluster.nodes if n.address not in targets]
    coordinators = others or [n.address for n in cluster.nodes]
    actions = ensure_handoff(cluster, coordinators, nt)
    host_ids = {str(cql.local(t)["host_id"]) for t in targets}
    tracker = DrainTracker(quiet_s=quiet_s, stall_s=stall_s)

    def sample(c: str) -> tuple[int | None, int | None, int | None]:
        """(pending files, hints created, hints delivered) for the targets; None where unreadable."""
        files = created = delivered = None
        try:
            files = sum(int(r["files"] or 0) for r in cql.pending_hints(c) if str(r["host_id"]) in host_ids)
        except NodeUnreachableError as e:
            log.warning("pending hints of %s unreadable: %s", c, e)
        try:
            counters = jmx.hint_counters(c)
            created = sum(counters.created_for(t) for t in targets)
            delivered = sum(counters.delivered_for(t) for t in targets)
        except (CommandError, ParseError) as e:
            log.warning("hint counters of %s unreadable (quiet-period fallback): %s", c, e)
        return files, created, delivered

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(coordinators))) as pool:
        while True:
            got = dict(zip(coordinators, pool.map(sample, coordinators), strict=True))
            pending = {c: f for c, (f, _, _) in got.items() if f is not None}
            created = {c: n for c, (_, n, _) in got.items() if n is not None}
            delivered = {c: d for c, (_, _, d) in got.items() if d is not None}
            now = time.monotonic() - t0
            state = tracker.observe(now, pending, created, delivered if len(delivered) == len(got) else None)
            left = tracker.history[-1][1]
            progress(f"hints for {', '.join(targets)}: {left} outstanding (files + undelivered), {state}, {now:.0f}s")
            if state is not DrainState.DRAINING or now > timeout_s:
                if state is DrainState.DRAINED:
                    why = ""
                elif state is DrainState.STALLED:
                    why = f"outstanding hints did not go down for {stall_s:.0f}s"
                else:
                    state, why = DrainState.STALLED, f"not drained within {timeout_s:.0f}s"
                return DrainReport(list(targets), state.value, round(now, 1), actions, tracker.history, why)
            time.sleep(poll_s)
