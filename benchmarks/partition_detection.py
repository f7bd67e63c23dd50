"""Split detection: time from the cut (`lab split dc1 dc2`) to Confirmed in our detector, and to a settled
"split" verdict of the regions' views, against the time until each side's own `nodetool status` shows the other
side DN (Cassandra's failure detector), in the same run. Needs a two-datacenter lab:
`cassandra-recovery lab up --dcs 2 --nodes-per-dc 2`.

Usage: .venv/bin/python benchmarks/partition_detection.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

from cassandra_recovery.detection.regions import dc_of, observe_regions
from cassandra_recovery.detection.runner import DetectorLoop
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.layout import datacenters
from cassandra_recovery.logic.detector import NodeHealth
from cassandra_recovery.logic.regions import RegionsKind, classify_regions, settled
from cassandra_recovery.settings import Settings

LIMIT_S = 180.0


def one_round(lab: Lab) -> dict[str, float]:
    cluster = Settings().cluster("lab")
    by_dc = datacenters(lab.state().spec)
    side_a, side_b = (by_dc[dc] for dc in sorted(by_dc)[:2])
    loop = DetectorLoop(cluster, interval_s=1.0, counters_every_s=1e9)
    for _ in range(3):
        loop.tick()
    where = dc_of(cluster)
    out: dict[str, float] = {}

    def nodetool_dn(t0: float) -> None:
        while time.monotonic() - t0 < LIMIT_S:
            views = lab.views()
            a_sees = all(views.get(o.name, {}).get(t.address) == "DN" for o in side_a for t in side_b)
            b_sees = all(views.get(o.name, {}).get(t.address) == "DN" for o in side_b for t in side_a)
            if a_sees and b_sees:
                out["nodetool_each_side_dn_s"] = time.monotonic() - t0
                return

    def regions_split(t0: float) -> None:
        history = []
        while time.monotonic() - t0 < LIMIT_S:
            history.append(classify_regions(observe_regions(cluster), where))
            v = settled(history)
            if v is not None and v.kind is RegionsKind.SPLIT:
                out["regions_settled_split_s"] = time.monotonic() - t0
                return

    t0 = time.monotonic()
    lab.split(side_a[0].datacenter, side_b[0].datacenter)
    threads = [threading.Thread(target=f, args=(t0,)) for f in (nodetool_dn, regions_split)]
    for t in threads:
        t.start()
    while "detector_confirmed_s" not in out and time.monotonic() - t0 < LIMIT_S:
        started = time.monotonic()
        loop.tick()
        if any(s is NodeHealth.CONFIRMED for s in loop.detector.states().values()):
            out["detector_confirmed_s"] = time.monotonic() - t0
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    for t in threads:
        t.join(timeout=LIMIT_S)
    lab.unsplit()
    lab.wait_all_up()
    loop.close()
    time.sleep(10)  # let gossip and the connections settle before the next round
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    lab = Lab(Settings().lab, progress=lambda m: None)
    if len(datacenters(lab.state().spec)) < 2:
        raise SystemExit("needs a two-datacenter lab: cassandra-recovery lab up --dcs 2 --nodes-per-dc 2")
    runs = [one_round(lab) for _ in range(ap.parse_args().repeat)]
    keys = ("detector_confirmed_s", "regions_settled_split_s", "nodetool_each_side_dn_s")
    med = {k: statistics.median(r[k] for r in runs if k in r) for k in keys if any(k in r for r in runs)}
    base = med.get("nodetool_each_side_dn_s")
    print(
        json.dumps(
            {
                "runs": [{k: round(v, 2) for k, v in r.items()} for r in runs],
                "median_s": {k: round(v, 2) for k, v in med.items()},
                "ratio_to_nodetool_dn": {k: round(v / base, 2) for k, v in med.items() if base},
            }
        )
    )


if __name__ == "__main__":
    main()
