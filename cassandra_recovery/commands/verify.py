"""`cassandra-recovery verify`: per-replica convergence of a table, optionally fixed and verified again."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from cassandra_recovery.clients.cql import identifier
from cassandra_recovery.commands import engine_here, progress
from cassandra_recovery.commands.output import emit
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="prove every replica's copy of a table equals the source of truth (or the other replicas); read-only",
    )
    p.add_argument("--cluster", default=None)
    p.add_argument("--keyspace", default=None, help="default: the orders domain's keyspace")
    p.add_argument("--table", default=None, help="default: the orders domain's table")
    p.add_argument("--rows-per-chunk", type=int, default=None, help="default: verification.rows_per_chunk")
    p.add_argument("--rows-per-s", type=float, default=None, help="read at most this many rows/s (0: no ceiling)")
    p.add_argument("--no-preview", action="store_true", help="skip nodetool repair --preview --full")
    p.add_argument("--fix", action="store_true", help="fix differing keys (or repair their ranges), then verify again")
    p.add_argument("--max-fix-keys", type=int, default=100)


def summary(d: Mapping[str, Any]) -> dict[str, Any]:
    """What a person reads of a verification report: the verdict, what was compared, and each difference's first
    keys (the report's full lists stay in the flow run's result)."""
    return {
        "converged": d["converged"],
        "verdict": d["verdict"],
        "rows_compared": d["rows_compared"],
        "mismatches": d["mismatches"],
        **{k: d[k] for k in ("keyspace", "table", "reference", "chunks", "rows_truth", "down", "replicas", "keys")},
        **{k: d[k] for k in ("unverified", "preview", "reasons", "reads", "rows_read", "elapsed_s", "clock_skew")},
        "diffs": [
            {"replica": x["replica"], "chunk": x["chunk"], "narrowed": x["narrowed"], "note": x["note"]}
            | {k: {"count": len(x[k]), "first": x[k][:20]} for k in ("missing", "extra", "different")}
            for x in d["diffs"]
        ],
    }


def validated(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The verify flow's parameters, or ConfigError (exit 2) before anything is contacted."""
    if (args.rows_per_chunk is not None and args.rows_per_chunk < 1) or args.max_fix_keys < 0:
        raise ConfigError("--rows-per-chunk must be >= 1 and --max-fix-keys >= 0")
    if args.rows_per_s is not None and args.rows_per_s < 0:
        raise ConfigError("--rows-per-s must be >= 0 (0: no ceiling)")
    for name in (args.keyspace, args.table):
        if name is not None:
            identifier(name)
    given = {"target_rows_per_chunk": args.rows_per_chunk, "rows_per_s": args.rows_per_s}
    limits = {k: v for k, v in given.items() if v is not None} | {"preview": not args.no_preview}
    return {
        "cluster_id": settings.cluster(args.cluster).id,
        "keyspace": args.keyspace,
        "table": args.table,
        "fix": args.fix,
        "limits": limits,
        "max_fix_keys": args.max_fix_keys,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The verify flow, run here (the same flow the incident runs, with its retries of an unproven pass)."""
    params = validated(args, settings)
    say = progress("verify")
    engine = engine_here(settings, say)
    done: Any = engine.run_verify(params)
    out = summary(done["report"])
    if len(done["passes"]) > 1:  # fixed, then verified again
        out["passes"] = done["passes"]
    for k in ("fix", "fix_skipped", "escalate"):
        if k in done:
            out[k] = done[k]
    emit(out, args.json)
    return 0 if out["converged"] else 1
