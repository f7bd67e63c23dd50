"""`nodetool repair --preview --full` per range: the replicas' own comparison (merkle trees on every replica,
nothing streamed), as a second opinion beside the per-replica reads."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.errors import CommandError, ParseError
from cassandra_recovery.logic.replication import TokenRange
from cassandra_recovery.logic.segments import unwrap
from cassandra_recovery.parsers.repair import parse_repair


def _one(nodetool: Nodetool, node: str, keyspace: str, table: str, a: int, b: int) -> dict[str, Any]:
    args = ("repair", "--preview", "--full", "-st", str(a), "-et", str(b), keyspace, table)
    res: dict[str, Any] = {"range": [str(a), str(b)], "coordinator": node}
    try:
        proc = nodetool.run(node, *args, timeout_s=600, check=False)
        out = parse_repair(proc.stdout, proc.stderr)
    except (CommandError, ParseError) as e:
        return res | {"in_sync": None, "error": str(e).splitlines()[0][:300]}
    res |= {"in_sync": out.preview_in_sync, "summary": out.preview_summary}
    if out.preview_in_sync is None:
        res["error"] = (out.error or out.stderr_error or f"no preview result (exit {proc.returncode})")[:300]
    return res


def preview(
    nodetool: Nodetool, keyspace: str, table: str, ranges: Sequence[TokenRange], attempts: int = 3, pause_s: float = 5.0
) -> dict[str, Any]:
    """in_sync: True when every range is in sync, False when one is not, None when one gave no answer after
    `attempts` tries (a preview can fail while another repair holds the replicas: it is asked again)."""
    results = []
    for r in ranges:
        for a, b in unwrap(r.start, r.end):
            for attempt in range(attempts):
                res = _one(nodetool, r.replicas[attempt % len(r.replicas)], keyspace, table, a, b)
                if res["in_sync"] is not None:
                    break
                time.sleep(pause_s)
            results.append(res | {"attempts": attempt + 1})
    states = {x["in_sync"] for x in results}
    in_sync = None if None in states else (False if False in states else True)
    return {"ran": True, "in_sync": in_sync, "ranges": results}
