"""One nodetool call against one CQL virtual-table read of the same fact (the node's hint window).

Baseline in the same run: the CQL read. Prints medians and the ratio; needs `cassandra-recovery lab up`.
Usage: .venv/bin/python benchmarks/nodetool_vs_cql.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.parsers.hints import parse_getmaxhintwindow
from cassandra_recovery.settings import Settings


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    cluster = Settings().cluster("lab")
    node = cluster.nodes[0]
    nt = Nodetool(cluster)
    with CqlClient(cluster) as cql:
        cql.settings(node.address, ["max_hint_window"])  # connect outside the measurement
        cql_s = _median_s(lambda: cql.settings(node.address, ["max_hint_window"]), args.repeat)
        nt_s = _median_s(lambda: parse_getmaxhintwindow(nt.output(node.name, "getmaxhintwindow")), args.repeat)
    print(
        json.dumps(
            {
                "repeat": args.repeat,
                "cql_virtual_table_median_ms": round(cql_s * 1000, 2),
                "nodetool_median_ms": round(nt_s * 1000, 1),
                "ratio_nodetool_over_cql": round(nt_s / cql_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
