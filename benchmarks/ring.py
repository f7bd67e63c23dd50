"""Consistent-hash ring against mod-N and first-character sharding on the same keys: balance, keys moved, speed.

Baseline in the same run: ModNSharder.node_for (same Murmur3 hash, same keys), so the lookups/s ratio is the
cost of the ring's bisect over its vnode points. Pure CPU; needs no lab.
Usage: .venv/bin/python benchmarks/ring.py [--keys 100000] [--members 5] [--vnodes 256] [--repeat 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable

from cassandra_recovery.logic.ring import (
    ConsistentHashRing,
    FirstCharSharder,
    ModNSharder,
    Sharder,
    balance,
    moved_share,
)

BASELINE = "mod_n"


def _lookups_per_s(sharders: dict[str, Sharder], keys: list[str], repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in sharders}
    names = list(sharders)
    for r in range(repeat):
        # rotate the order each round so warm-up or clock drift does not always favour the same sharder
        for name in names[r % len(names) :] + names[: r % len(names)]:
            node_for = sharders[name].node_for
            t0 = time.perf_counter()
            for k in keys:
                node_for(k)
            times[name].append(time.perf_counter() - t0)
    return {name: len(keys) / statistics.median(ts) for name, ts in times.items()}


def _compare(keys: list[str], members: list[str], vnodes: int, repeat: int) -> dict[str, dict[str, float | None]]:
    makers: dict[str, Callable[[list[str]], Sharder]] = {
        "ring": lambda ms: ConsistentHashRing(ms, vnodes=vnodes),
        "mod_n": ModNSharder,
        "first_char": FirstCharSharder,
    }
    grown = [*members, f"node{len(members) + 1}"]
    shrunk = members[1:]  # drop the first member; with 1 member there is nothing left to move to
    now = {name: make(members) for name, make in makers.items()}
    speed = _lookups_per_s(now, keys, repeat)
    out: dict[str, dict[str, float | None]] = {}
    for name, make in makers.items():
        out[name] = {
            "balance_max_over_mean": round(balance(now[name], keys), 3),
            "moved_on_add": round(moved_share(now[name], make(grown), keys), 4),
            "moved_on_remove": round(moved_share(now[name], make(shrunk), keys), 4) if shrunk else None,
            "lookups_per_s": round(speed[name]),
            f"lookups_vs_{BASELINE}": round(speed[name] / speed[BASELINE], 3),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--vnodes", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5, help="timed passes over the keys per sharder (median kept)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the uuid key set, so runs are comparable")
    args = ap.parse_args()
    if min(args.keys, args.members, args.vnodes, args.repeat) < 1:
        ap.error("--keys, --members, --vnodes and --repeat must be >= 1")
    rng = random.Random(args.seed)
    key_sets = {
        "order": [f"order-{i:08d}" for i in range(args.keys)],
        "uuid4": [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.keys)],
    }
    members = [f"node{i}" for i in range(1, args.members + 1)]
    print(
        json.dumps(
            {
                "keys": args.keys,
                "members": args.members,
                "vnodes": args.vnodes,
                "repeat": args.repeat,
                "seed": args.seed,
                "baseline": f"{BASELINE}: ModNSharder.node_for on the same keys in this run",
                "ideal": {
                    "balance_max_over_mean": 1.0,
                    "moved_on_add": round(1 / (args.members + 1), 4),
                    "moved_on_remove": round(1 / args.members, 4),
                },
                "results": {name: _compare(keys, members, args.vnodes, args.repeat) for name, keys in key_sets.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
