"""A new user's first run: `bin/demo` on a machine with no lab, no PostgreSQL cluster of ours and no Prefect
database ends `converged`. It is how the cluster tier brings its lab up (tests/cluster/conftest.py), so CI
proves the README's main command at no extra lab start."""

from __future__ import annotations

import re

import pytest

from cassandra_recovery.lab.cluster import Lab
from tests import faults as F

pytestmark = [pytest.mark.first_run, pytest.mark.area("lab")]


@pytest.mark.fault(F.NODE_PARTITIONED)
def test_the_demo_brings_up_a_fresh_lab_and_ends_converged(lab: Lab, request: pytest.FixtureRequest) -> None:
    run = request.config._cr_first_run  # type: ignore[attr-defined]
    tail = run.output[-4000:]
    assert run.returncode == 0, tail
    verdict = re.search(r"verification verdict: (\w+) \((\d+) rows compared, (\d+) mismatching chunks\)", run.output)
    assert verdict is not None, tail
    assert verdict.group(1) == "converged" and int(verdict.group(2)) > 0 and verdict.group(3) == "0", tail
    assert "partition healed" in run.output and "lab up: 3 nodes UN" in run.output, tail
    # What it leaves running is listed with the one command that stops it all.
    listed = run.output[run.output.index("left running:") :]
    assert "lab-jvm" in listed and "prefect-server" in listed and "postgresql" in listed, listed
    assert "stop all of it with: .venv/bin/cassandra-recovery lab down --postgres" in listed
    if not run.fresh:
        pytest.fail("the lab directory existed before the demo: not a first run (bin/test uses a fresh one)")
