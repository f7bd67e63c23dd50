"""Schema disagreement among live nodes (pure): a down or just-returned node's stale version is expected.

describecluster lists a down node under the last schema version gossip knew for it (or UNREACHABLE), and a node
that just came back differs until it pulls the schema from its peers. Neither is a reason to hold repair or
streaming; only nodes that are up, and back for at least a settle time, can disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

UNREACHABLE = "UNREACHABLE"  # describecluster's pseudo schema version for nodes that did not answer


@dataclass(frozen=True)
class SchemaAgreement:
    disagreeing: dict[str, list[str]]  # version -> settled live addresses; empty when they agree
    set_aside: list[str] = field(default_factory=list)  # why a differing version was not counted


def schema_agreement(
    versions: Mapping[str, Sequence[str]],
    down: Collection[str],
    back_since: Mapping[str, datetime],
    now: datetime,
    settle_s: float,
) -> SchemaAgreement:
    """Versions held by nodes that are up and settled. `back_since`: when a node that was down was seen back
    (a node not in it counts as settled: nothing shows it just returned); `settle_s` bounds how long a returned
    node may differ before its version counts."""

    def settling(address: str) -> bool:
        since = back_since.get(address)
        return since is not None and (now - since).total_seconds() < settle_s

    counted: dict[str, list[str]] = {}
    aside: dict[str, tuple[str, str]] = {}  # address -> (version, why)
    for version, addresses in sorted(versions.items()):
        if version == UNREACHABLE:
            continue
        for a in addresses:
            if a in down:
                aside[a] = (version, "is down")
            elif settling(a):
                aside[a] = (version, f"came back less than {settle_s:.0f} s ago")
            else:
                counted.setdefault(version, []).append(a)
    reasons = [
        f"{a} {why}: its schema version {v} differs from the live nodes' and is expected to until it pulls the schema"
        for a, (v, why) in sorted(aside.items())
        if v not in counted
    ]
    return SchemaAgreement(counted if len(counted) > 1 else {}, reasons)
