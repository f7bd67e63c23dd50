"""`cassandra-recovery verify`: per-replica convergence of a table, optionally fixed and verified again."""

from __future__ import annotations

import argparse
from typing import Any

from cassandra_recovery.commands import progress
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


def summary(rep: Any) -> dict[str, Any]:
    d = rep.as_dict()
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.verification.service import fix, verify
    from cassandra_recovery.verification.verifier import VerifyConfig

    if (args.rows_per_chunk is not None and args.rows_per_chunk < 1) or args.max_fix_keys < 0:
        raise ConfigError("--rows-per-chunk must be >= 1 and --max-fix-keys >= 0")
    if args.rows_per_s is not None and args.rows_per_s < 0:
        raise ConfigError("--rows-per-s must be >= 0 (0: no ceiling)")
    cluster = settings.cluster(args.cluster)
    say = progress("verify")
    given = {"target_rows_per_chunk": args.rows_per_chunk, "rows_per_s": args.rows_per_s}
    overrides = {k: v for k, v in given.items() if v is not None}
    cfg = VerifyConfig.from_settings(settings.verification, preview=not args.no_preview, **overrides)
    rep = verify(settings, cluster.id, args.keyspace, args.table, config=cfg, progress=say)
    out: dict[str, Any] = summary(rep)
    if args.fix and rep.verdict == "diverged":
        out["first_pass"] = dict(out)
        import time

        out["fix"] = fix(settings, cluster.id, rep, f"verify-fix/{int(time.time())}", args.max_fix_keys, say)
        out |= summary(verify(settings, cluster.id, args.keyspace, args.table, config=cfg, progress=say))
    emit(out, args.json)
    return 0 if out["converged"] else 1
