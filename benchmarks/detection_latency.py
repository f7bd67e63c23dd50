"""Detection latency: freeze to Confirmed (our detector) against freeze to DN in a peer's `nodetool status`
(Cassandra's own failure detector), in the same run. Needs `cassandra-recovery lab up` (3 nodes).

Usage: .venv/bin/python benchmarks/detection_latency.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.detection.runner import DetectorLoop
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.logic.detector import NodeHealth
from cassandra_recovery.parsers.status import parse_status
from cassandra_recovery.settings import Settings


def one_round(lab: Lab) -> tuple[float, float]:
    cluster = Settings().cluster("lab")
    loop = DetectorLoop(cluster, interval_s=1.0, counters_every_s=1e9)
    for _ in range(3):
        loop.tick()
    nt = Nodetool(cluster)
    target = lab.node("node3")
    gossip_s: list[float] = []

    def watch_gossip(t0: float) -> None:
        while True:
            rows = {r.address: r for r in parse_status(nt.output("node1", "status", timeout_s=30))}
            if not rows[target.address].up:
                gossip_s.append(time.monotonic() - t0)
                return

    t0 = time.monotonic()
    lab.freeze("node3")
    watcher = threading.Thread(target=watch_gossip, args=(t0,))
    watcher.start()
    ours = None
    while ours is None:
        started = time.monotonic()
        loop.tick()
        if loop.detector.states()["node3"] is NodeHealth.CONFIRMED:
            ours = time.monotonic() - t0
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    watcher.join(timeout=120)
    lab.thaw("node3")
    loop.close()
    return ours, gossip_s[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    lab = Lab(Settings().lab, progress=lambda m: None)
    runs = [one_round(lab) for _ in range(ap.parse_args().repeat)]
    ours = statistics.median(r[0] for r in runs)
    theirs = statistics.median(r[1] for r in runs)
    print(
        json.dumps(
            {
                "runs": [[round(a, 2), round(b, 2)] for a, b in runs],
                "detector_confirmed_median_s": round(ours, 2),
                "gossip_dn_median_s": round(theirs, 2),
                "ratio_detector_over_gossip": round(ours / theirs, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
