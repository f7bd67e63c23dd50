"""Capture what a repair started by hand (not by this tool) looks like: nodetool and system_views fixtures.

Usage: .venv/bin/python scripts/capture_foreign_repairs.py  (needs a 2-node lab: `cassandra-recovery lab up --nodes 2`)
Writes tests/fixtures/nodetool/{repair_admin,compactionstats}_*.txt and tests/fixtures/system_views/*.json.
Such a repair lasts seconds and each nodetool call is a JVM of its own: nodetool is polled while the repair runs,
and an output is kept only once it shows the repair (compaction is throttled meanwhile; validation is not).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cassandra.concurrent import execute_concurrent_with_args

from cassandra_recovery.clients.cql import CqlClient, table_name
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.registry import lab_cluster_config
from cassandra_recovery.settings import Settings

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
KS = "foreign"
VIEWS = ("repairs", "repair_participates", "repair_validations", "sstable_tasks")


def _plain(v: Any) -> Any:
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, (set, frozenset, list, tuple)) or type(v).__name__ == "SortedSet":
        return [_plain(x) for x in v]
    if isinstance(v, dict) or type(v).__name__ == "OrderedMapSerializedKey":
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _one_row_per_line(doc: dict[str, Any]) -> str:
    """JSON with one row per line: diffs of a recapture stay readable."""
    views = [k for k in sorted(doc) if k != "source"]
    lines = ["{", f' "source": {json.dumps(doc["source"])},']
    for i, view in enumerate(views):
        rows = [json.dumps(r, sort_keys=True) for r in doc[view]]
        lines += [f" {json.dumps(view)}: [", *(f"  {r}," for r in rows[:-1]), *(f"  {r}" for r in rows[-1:])]
        lines.append(" ]," if i < len(views) - 1 else " ]")
    return "\n".join([*lines, "}"]) + "\n"


def main() -> int:  # noqa: PLR0915 - one scenario script, read top to bottom
    settings = Settings()
    lab = Lab(settings.lab, progress=lambda m: print("[lab]", m, file=sys.stderr))
    nt = lab.nodetool()
    version = lab.state().version
    cluster = lab_cluster_config(settings.lab)
    cql = CqlClient(cluster)
    addr = {n.name: n.address for n in cluster.nodes}

    missing: set[str] = set()

    def capture(name: str, scenario: str, node: str, *args: str, wanted: str = "") -> str:
        """Written only when the output shows `wanted` (a repair may end before a nodetool JVM is up: try again)."""
        proc = nt.run(node, *args, check=False)
        if wanted not in proc.stdout:
            missing.add(name)
            print(f"{name}: no {wanted!r} in the output this time", file=sys.stderr)
            return proc.stdout
        missing.discard(name)
        header = f"# Cassandra {version}; scenario: {scenario}; command: nodetool {' '.join(args)} (on {node});"
        body = proc.stdout + ("# --- stderr ---\n" + proc.stderr if proc.stderr.strip() else "")
        (ROOT / "nodetool" / f"{name}.txt").write_text(f"{header} exit: {proc.returncode}\n{body}")
        print(f"captured {name} (exit {proc.returncode})", file=sys.stderr)
        return proc.stdout

    def views(name: str, scenario: str, node: str) -> dict[str, list[Any]]:
        doc: dict[str, Any] = {"source": f"Cassandra {version}; scenario: {scenario}; on {node}"}
        for view in VIEWS:
            rows = cql.execute_on(addr[node], f"SELECT * FROM system_views.{view}")  # noqa: S608 - constant names
            doc[view] = [{k: _plain(v) for k, v in r.items()} for r in rows]
        (ROOT / "system_views" / f"{name}.json").write_text(_one_row_per_line(doc))
        print(f"captured {name}: {[len(doc[v]) for v in VIEWS]}", file=sys.stderr)
        return doc

    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 2}}"
    )
    kv = table_name(KS, "kv")
    cql.execute("CREATE TABLE IF NOT EXISTS " + kv + " (k int PRIMARY KEY, v text)")
    stmt = cql.session.prepare("INSERT INTO " + kv + " (k, v) VALUES (?, ?)")

    def write() -> None:
        execute_concurrent_with_args(cql.session, stmt, [(k, "x" * 1000) for k in range(40_000)], concurrency=50)
        for node in addr:
            nt.run(node, "flush", KS)

    write()
    for node in addr:
        nt.run(node, "setcompactionthroughput", "1")

    idle = "no repair running"
    capture("repair_admin_list_none", idle, "node1", "repair_admin", "list")
    capture("compactionstats_idle", idle, "node1", "compactionstats")
    views("idle_node1", idle, "node1")

    def run_by_hand(node: str, *args: str) -> threading.Thread:
        t = threading.Thread(target=lambda: nt.run(node, "repair", *args, KS, check=False, timeout_s=900))
        t.start()
        return t

    def until_running(node: str, view: str) -> None:
        for _ in range(600):
            rows = cql.execute_on(addr[node], f"SELECT completed FROM system_views.{view}")  # noqa: S608
            if any(not r["completed"] for r in rows):  # the views keep earlier repairs too
                return
            time.sleep(0.2)
        raise SystemExit(f"nothing running in {view} on {node}")

    def watching(repair: threading.Thread, name: str, scenario: str, node: str, *args: str, wanted: str) -> None:
        """nodetool again and again while the repair runs (each call is a JVM taking seconds, a repair may not last
        much longer): the first output showing `wanted` is kept."""
        while repair.is_alive() and name in missing | {name}:
            capture(name, scenario, node, *args, wanted=wanted)
            if name not in missing:
                return

    def scenario(
        name: str,
        node: str,
        args: tuple[str, ...],
        running_on: tuple[str, str],
        *jobs: Callable[[threading.Thread], object],
    ) -> None:
        repair = run_by_hand(node, *args)
        pollers = [threading.Thread(target=j, args=(repair,)) for j in jobs]
        for th in pollers:
            th.start()
        until_running(*running_on)
        views(f"{name}_{node}", scenarios[name], node)
        other = next(n for n in addr if n != node)
        views(f"{name}_{other}", scenarios[name], other)
        for th in [repair, *pollers]:
            th.join()

    full = "a full repair started by hand with nodetool repair -full on node1, running"
    inc = "an incremental repair started by hand with nodetool repair on node2, running"
    scenarios = {"full_running": full, "incremental_running": inc}

    def poll(name: str, text: str, node: str, *args: str, wanted: str) -> Callable[[threading.Thread], None]:
        return lambda repair: watching(repair, name, text, node, *args, wanted=wanted)

    scenario(
        "full_running", "node1", ("-full",), ("node2", "repair_validations"),
        poll("compactionstats_validation_full_node1", full, "node1", "compactionstats", wanted="Validation"),
        poll("compactionstats_validation_full_node2", full, "node2", "compactionstats", wanted="Validation"),
        poll("repair_admin_list_during_full", full, "node1", "repair_admin", "list", wanted=""),
    )  # fmt: skip
    views("full_done_node1", "the hand-started full repair finished", "node1")
    write()  # unrepaired data again, so that the incremental repair has something to do for a while
    scenario(
        "incremental_running", "node2", (), ("node2", "repairs"),
        poll("repair_admin_list_incremental_node1", inc, "node1", "repair_admin", "list", wanted=" | "),
        poll("compactionstats_validation_incremental_node1", inc, "node1", "compactionstats", wanted="Validation"),
    )  # fmt: skip
    done = "the hand-started incremental repair finished"
    capture("repair_admin_list_incremental_done", done, "node2", "repair_admin", "list")
    capture("repair_admin_list_all_after_incremental", done, "node2", "repair_admin", "list", "--all")
    views("incremental_done_node2", done, "node2")
    for node in addr:
        nt.run(node, "setcompactionthroughput", "64")
    return 0


if __name__ == "__main__":
    sys.exit(main())
