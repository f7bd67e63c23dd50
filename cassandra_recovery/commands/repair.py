"""`cassandra-recovery repair`: the segmented, checkpointed repair flow, run here against the project's Prefect."""

from __future__ import annotations

import argparse
from typing import Any

from cassandra_recovery.commands import engine_here, progress
from cassandra_recovery.commands.output import emit
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "repair", help="repair the ranges some nodes replicate (every range without --node), segment by segment"
    )
    p.add_argument("--cluster", default=None)
    p.add_argument("--node", action="append", default=[], help="a node whose ranges to repair (repeatable)")
    p.add_argument("--keyspace", action="append", default=[], help="only this keyspace (repeatable)")
    p.add_argument("--incremental", action="store_true", help="incremental instead of full")
    p.add_argument("--segments-per-range", type=int, default=1)
    p.add_argument("--segment-timeout", type=float, default=600.0, help="seconds per segment attempt")
    p.add_argument("--run-key", default=None, help="resume the run with this key (shown in the report)")
    p.add_argument("--start-token", type=int, default=None, help="repair only (START, END]: exclusive start")
    p.add_argument("--end-token", type=int, default=None, help="inclusive end (with --start-token)")


def validated(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The flow's parameters, or ConfigError (exit 2) before anything is contacted."""
    cluster = settings.cluster(args.cluster)
    if not 1 <= args.segments_per_range <= 1024:
        raise ConfigError("--segments-per-range must be between 1 and 1024")
    if not args.segment_timeout > 0:
        raise ConfigError("--segment-timeout must be positive")
    token_range = None
    if (args.start_token is None) != (args.end_token is None):
        raise ConfigError("--start-token and --end-token go together")
    if args.start_token is not None:
        for t in (args.start_token, args.end_token):
            if not -(2**63) <= t <= 2**63 - 1:
                raise ConfigError(f"token {t} is outside the Murmur3 ring [-2^63, 2^63-1]")
        token_range = {"start": args.start_token, "end": args.end_token}
    return {
        "token_range": token_range,
        "cluster_id": cluster.id,
        "targets": [cluster.node(n).address for n in args.node],
        "keyspaces": list(args.keyspace) or None,
        "kind": "incremental" if args.incremental else "full",
        "segments_per_range": args.segments_per_range,
        "segment_timeout_s": args.segment_timeout,
        "run_key": args.run_key,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    params = validated(args, settings)
    say = progress("repair")
    engine = engine_here(settings, say)
    report: Any = engine.run_repair(params)
    emit(report, args.json)
    return 1 if report["escalated"] else 0
