"""Which replica served a read, proven from its query trace (pure: trace events in, attribution out).

A range read at CL ONE runs a seq scan on exactly one replica per page. The trace names the node that ran each
step, so the data's origin is read from the trace rather than assumed from the pinned coordinator: the dynamic
snitch may send a pinned read to another replica, and that read is then evidence about that other replica.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Steps that happen where the data is read.
_DATA_STEPS = ("Executing seq scan", "Executing single-partition query", "Read ")
# Steps that mean more than one replica's data may be in the answer (or that a replica was written to).
_MIXING = ("Digest mismatch", "speculating read retry", "Sending READ_REPAIR", "Read-repair", "read repair")


@dataclass(frozen=True)
class TraceEvent:
    source: str
    description: str


@dataclass(frozen=True)
class Attribution:
    served_by: str | None  # the one replica whose data the answer holds; None when unproven
    reason: str = ""  # why it is unproven


def attribute(traces: Iterable[Iterable[TraceEvent]], replicas: Iterable[str]) -> Attribution:
    """The single replica that ran every data step of every page, and a replica of the range it read."""
    sources: set[str] = set()
    pages = 0
    for events in traces:
        pages += 1
        page_sources = set()
        for ev in events:
            if any(m.lower() in ev.description.lower() for m in _MIXING):
                return Attribution(None, f"trace shows {ev.description!r} on {ev.source}")
            if ev.description.startswith(_DATA_STEPS):
                page_sources.add(ev.source)
        if not page_sources:
            return Attribution(None, f"page {pages}: the trace has no data step (incomplete trace)")
        sources |= page_sources
    if pages == 0:
        return Attribution(None, "no trace returned")
    if len(sources) > 1:
        return Attribution(None, f"pages served by several replicas: {', '.join(sorted(sources))}")
    (source,) = sources
    if source not in set(replicas):
        return Attribution(None, f"served by {source}, which is not a replica of the range")
    return Attribution(source)


@dataclass(frozen=True)
class ProofStep:
    """The next read of a replica's copy: its coordinator, and whether the replica's own read latency is refreshed
    first (its dynamic snitch sent a read pinned to it to another replica)."""

    coordinator: str
    refresh: bool = False


def next_read(
    replica: str,
    others: list[str],
    attempt: int,
    elapsed_s: float,
    budget_s: float,
    min_attempts: int,
    sent_elsewhere: bool,
) -> ProofStep | None:
    """The read to try next for `replica` (attempt counts from 0), or None once at least `min_attempts` were made
    and `budget_s` has passed since the first: the copy then stays unproven, never assumed.

    The replica coordinates every other read itself; in between, other live nodes do (a coordinator whose snitch
    ranks this replica first serves the read from it). A replica's dynamic snitch ranks replicas by recent read
    latency, its own included; right after a restart its first local reads are slow, so it sends reads pinned to
    it elsewhere, records no new local latency and keeps doing so until the snitch resets (10 min by default).
    Once that is seen, its own latency is refreshed (cheap node-local reads) before each read it coordinates.
    """
    if attempt >= min_attempts and elapsed_s >= budget_s:
        return None
    if attempt % 2 == 0 or not others:
        return ProofStep(replica, refresh=sent_elsewhere)
    return ProofStep(others[(attempt // 2) % len(others)])
