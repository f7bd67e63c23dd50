"""Regenerate tests/fixtures/nodetool/*.txt from the real lab, driving it through each scenario.

Usage: .venv/bin/python scripts/capture_fixtures.py  (needs a 3-node lab: `cassandra-recovery lab up`)
Each fixture's first line names the Cassandra version, the scenario, the command and its exit code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cassandra import ConsistencyLevel

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.registry import lab_cluster_config
from cassandra_recovery.settings import Settings

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nodetool"
KS = "fixtures"
HINT_MBEANS = ("sjk", "mx", "-mg", "-all", "-b", "org.apache.cassandra.metrics:name=*Hint*,*", "-f", "Count")
DROPPED_MBEANS = (
    "sjk",
    "mx",
    "-mg",
    "-all",
    "-b",
    "org.apache.cassandra.metrics:type=DroppedMessage,name=Dropped,*",
    "-f",
    "Count",
)


def main() -> int:
    settings = Settings()
    lab = Lab(settings.lab, progress=lambda m: print("[lab]", m, file=sys.stderr))
    nt = lab.nodetool()
    version = lab.state().version
    OUT.mkdir(parents=True, exist_ok=True)

    def capture(name: str, scenario: str, node: str, *args: str) -> None:
        proc = nt.run(node, *args, check=False)
        command = f"nodetool {' '.join(args)} (on {node})"
        header = f"# Cassandra {version}; scenario: {scenario}; command: {command}; exit: {proc.returncode}\n"
        body = proc.stdout
        if proc.stderr.strip():
            body += "# --- stderr ---\n" + proc.stderr
        (OUT / f"{name}.txt").write_text(header + body)
        print(f"captured {name} (exit {proc.returncode})", file=sys.stderr)

    cql = CqlClient(lab_cluster_config(settings.lab))
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}"
    )
    cql.execute("CREATE TABLE IF NOT EXISTS fixtures.kv (k int PRIMARY KEY, v text)")

    def write(n: int, start: int = 0) -> None:
        for k in range(start, start + n):
            # coordinated by node1: the driver may not yet know that node3 is frozen
            cql.execute_on(
                "127.0.0.2",
                f"INSERT INTO {KS}.kv (k, v) VALUES (%s, %s)",
                (k, "x" * 100),
                consistency=ConsistencyLevel.ONE,
            )

    write(200)
    s = "all nodes up"
    capture("status_all_up", s, "node1", "status")
    capture("describecluster_all_up", s, "node1", "describecluster")
    capture("info_all_up", s, "node1", "info")
    capture("statushandoff_running", s, "node1", "statushandoff")
    capture("listpendinghints_none", s, "node1", "listpendinghints")
    capture("getmaxhintwindow_default", s, "node1", "getmaxhintwindow")
    capture("tpstats_all_up", s, "node1", "tpstats")
    capture("netstats_all_up", s, "node1", "netstats")
    capture("repair_full_ok", "all nodes up, full repair of one keyspace", "node1", "repair", "-full", KS)
    capture(
        "repair_preview_in_sync",
        "all nodes up, preview of a repaired keyspace",
        "node1",
        "repair",
        "--preview",
        "--full",
        KS,
    )

    nt.run("node1", "disablehandoff")
    capture("statushandoff_disabled", "hinted handoff disabled on node1", "node1", "statushandoff")
    nt.run("node1", "enablehandoff")
    nt.run("node1", "pausehandoff")
    capture("statushandoff_paused", "hint delivery paused on node1", "node1", "statushandoff")
    nt.run("node1", "resumehandoff")

    # node3 frozen: DN in status, unreachable in describecluster, hints accumulate for it.
    lab.freeze("node3")
    # Before node3 is convicted its mutations are still sent; they expire in its queue -> dropped on thaw.
    write(300, start=1000)
    lab.wait_seen(lab.node("node3"), up=False)
    write(2000, start=2000)
    s = "node3 frozen (SIGSTOP), seen DN, writes at CL ONE"
    capture("status_node3_down", s, "node1", "status")
    capture("describecluster_node3_down", s, "node1", "describecluster")
    capture("info_node3_down", s, "node2", "info")
    capture("listpendinghints_node3_down", s, "node1", "listpendinghints")
    capture("netstats_node3_down", s, "node1", "netstats")
    capture("sjk_hints_node3_down", s, "node1", *HINT_MBEANS)
    capture(
        "repair_failed_node_down", "node3 frozen, repair of a keyspace it replicates", "node1", "repair", "-full", KS
    )
    time.sleep(3)  # messages queued to the frozen node expire (write timeout 2 s) before it runs again
    lab.thaw("node3")
    capture("tpstats_dropped_after_thaw", "node3 thawed after missing mutations; dropped messages", "node3", "tpstats")
    capture("sjk_dropped_after_thaw", "node3 thawed after missing mutations", "node3", *DROPPED_MBEANS)
    capture("listpendinghints_after_thaw", "node3 thawed, hints being delivered", "node1", "listpendinghints")

    # node2 partitioned: process alive, gossip and binary off.
    lab.partition("node2")
    lab.wait_seen(lab.node("node2"), up=False)
    s = "node2 partitioned (disablegossip + disablebinary)"
    capture("status_node2_partitioned", s, "node1", "status")
    capture("describecluster_node2_partitioned", s, "node1", "describecluster")
    capture("info_node2_partitioned", s, "node2", "info")
    capture("status_seen_from_partitioned_node2", s, "node2", "status")
    # Schema change while node2 cannot hear about it: its own describecluster disagrees.
    cql.execute("CREATE TABLE IF NOT EXISTS fixtures.schema_probe (k int PRIMARY KEY)")
    capture(
        "describecluster_schema_disagreement",
        "node2 partitioned while a table was created on node1",
        "node2",
        "describecluster",
    )
    lab.heal("node2")
    cql.execute("DROP TABLE IF EXISTS fixtures.schema_probe")
    cql.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
