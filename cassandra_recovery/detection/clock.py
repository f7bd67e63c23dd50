"""Clock skew per node, read from each host: last-write-wins settles conflicting writes by timestamps, so a
node whose clock runs ahead wins conflicts it should lose."""

from __future__ import annotations

import time
from typing import Any

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.settings import ClusterConfig


def clock_skew(cluster: ClusterConfig, cql: CqlClient) -> dict[str, dict[str, Any]]:
    """Per node: its clock minus ours (ms), with the uncertainty of the measurement (half the round trip);
    an error instead for a node that does not answer."""
    out: dict[str, dict[str, Any]] = {}
    for n in cluster.nodes:
        t0 = time.time()
        try:
            rows = cql.execute_on(n.address, "SELECT toUnixTimestamp(now()) AS t FROM system.local", timeout_s=5)
        except RecoveryError as e:
            out[n.address] = {"error": str(e)[:200]}
            continue
        t1 = time.time()
        theirs_ms = int(rows[0]["t"])
        ours_ms = (t0 + t1) / 2 * 1000
        out[n.address] = {"skew_ms": round(theirs_ms - ours_ms, 1), "uncertainty_ms": round((t1 - t0) / 2 * 1000, 1)}
    return out


def max_spread_ms(skew: dict[str, dict[str, Any]]) -> float | None:
    """The largest difference between two nodes' clocks, or None without two readings."""
    values = [v["skew_ms"] for v in skew.values() if "skew_ms" in v]
    return round(max(values) - min(values), 1) if len(values) >= 2 else None
