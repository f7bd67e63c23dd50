"""The convergence verdict (pure): per-replica chunk summaries against the source of truth.

What could not be proven is never counted as converged: a replica that is down, or a chunk whose read cannot
be shown to come from the replica it claims (e.g. the trace names another node), makes the verdict
"cannot verify" unless something already proves a divergence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cassandra_recovery.logic.narrowing import Range, Summary


class Verdict(StrEnum):
    CONVERGED = "converged"
    DIVERGED = "diverged"
    CANNOT_VERIFY = "cannot_verify"


@dataclass(frozen=True)
class ReplicaChunk:
    summary: Summary | None  # None: not read (timeout, error)
    proven: bool  # the read is shown to come from this replica alone
    reason: str = ""  # why it is not proven / not read


@dataclass(frozen=True)
class Mismatch:
    chunk: Range
    replica: str
    truth: Summary
    found: Summary


@dataclass
class ConvergenceReport:
    verdict: Verdict
    rows_compared: int
    mismatches: list[Mismatch] = field(default_factory=list)
    unverified: list[tuple[Range, str, str]] = field(default_factory=list)  # (chunk, replica, reason)
    reasons: list[str] = field(default_factory=list)


def judge(
    truth: Mapping[Range, Summary],
    replicas: Mapping[str, Mapping[Range, ReplicaChunk]],
    down: Iterable[str] = (),
) -> ConvergenceReport:
    """Every replica's summary of every chunk it holds must equal the truth's, and be proven to be its own."""
    rep = ConvergenceReport(Verdict.CONVERGED, 0)
    down_set = sorted(set(down))
    if down_set:
        rep.reasons.append(f"replicas down: {', '.join(down_set)}: their data cannot be read")
    for replica, chunks in sorted(replicas.items()):
        for chunk, got in sorted(chunks.items()):
            want = truth.get(chunk)
            if want is None:
                raise ValueError(f"chunk {chunk} of {replica} has no source-of-truth summary")
            if got.summary is None or not got.proven:
                rep.unverified.append((chunk, replica, got.reason or "not read"))
                if got.summary is None:
                    continue
            rep.rows_compared += got.summary.count
            if got.summary != want:
                rep.mismatches.append(Mismatch(chunk, replica, want, got.summary))
    if rep.mismatches:
        rep.verdict = Verdict.DIVERGED
        by_replica = sorted({m.replica for m in rep.mismatches})
        rep.reasons.append(f"{len(rep.mismatches)} chunk(s) differ on {', '.join(by_replica)}")
    elif down_set or rep.unverified:
        rep.verdict = Verdict.CANNOT_VERIFY
        if rep.unverified:
            rep.reasons.append(f"{len(rep.unverified)} chunk read(s) not proven to come from their replica")
    return rep
