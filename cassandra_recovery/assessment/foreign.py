"""The repairs running on a cluster that this tool did not start, as the assessment names them."""

from __future__ import annotations

from collections.abc import Sequence

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.repair_activity import RepairActivity
from cassandra_recovery.contracts import ForeignRepairDoc
from cassandra_recovery.logic.foreign_repairs import NodeRepairs, OwnRepairs, foreign_anywhere
from cassandra_recovery.settings import ClusterConfig


def foreign_repairs_now(
    cluster: ClusterConfig, nodes: Sequence[str], own: OwnRepairs | None = None, activity: RepairActivity | None = None
) -> list[ForeignRepairDoc]:
    """Each answering node (names or addresses) read once: its system_views repair tables, `repair_admin list` and
    `compactionstats`. A node that cannot be read is skipped (logged); none readable gives an empty list. `own`:
    this tool's segments in flight (checkpoints), left out. `activity`: the reader (default: CQL to these nodes
    alone, and nodetool)."""
    addresses = [cluster.node(n).address for n in nodes]
    if not addresses:
        return []
    if activity is not None:
        return named(activity.observe(addresses), own)
    with CqlClient(cluster, request_timeout_s=5.0, hosts=addresses) as cql:
        return named(RepairActivity(cql, Nodetool(cluster), nodetool_timeout_s=30.0).observe(addresses), own)


def named(observed: Sequence[NodeRepairs], own: OwnRepairs | None) -> list[ForeignRepairDoc]:
    return [r.as_doc() for r in foreign_anywhere(observed, own or OwnRepairs())]
