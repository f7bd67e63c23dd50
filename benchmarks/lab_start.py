"""Lab start time cold (empty Maven repository and runtime cache) against warm (cached), and RSS per node.

Baseline in the same run: the warm start. Uses its own lab dir and Maven repository under /var/tmp,
so the shared lab must be down (same addresses). Usage: .venv/bin/python benchmarks/lab_start.py
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from cassandra_recovery.lab import procs
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.settings import LabConfig

ROOT = Path("/var/tmp/cassandra-recovery-bench")  # noqa: S108 - scratch space, removed at the end


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    os.environ["MAVEN_OPTS"] = f"-Dmaven.repo.local={ROOT / 'm2'}"
    lab = Lab(LabConfig(base_dir=ROOT / "lab"), progress=lambda m: None)
    if procs.lab_processes(Path("/var/lib/cassandra-recovery/lab"), LabConfig().user_prefix):
        raise SystemExit("the shared lab is up on the same addresses: run `cassandra-recovery lab down` first")
    try:
        t0 = time.monotonic()
        lab.up()
        cold = time.monotonic() - t0
        time.sleep(30)  # let the nodes settle before reading RSS
        rss = [_rss_mb(p.pid) for p in procs.lab_processes(lab.base, lab.config.user_prefix)]
        lab.down()
        t0 = time.monotonic()
        lab.up()
        warm = time.monotonic() - t0
    finally:
        lab.down()
        shutil.rmtree(ROOT, ignore_errors=True)
    print(
        json.dumps(
            {
                "cold_start_s": round(cold, 1),
                "warm_start_s": round(warm, 1),
                "ratio_cold_over_warm": round(cold / warm, 2),
                "rss_mb_per_node_after_30s": [round(r) for r in rss],
            }
        )
    )


if __name__ == "__main__":
    main()
