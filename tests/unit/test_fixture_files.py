"""Every captured nodetool fixture: header shape, loader split, and a parser that accepts it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cassandra_recovery.parsers.compactionstats import parse_compactionstats
from cassandra_recovery.parsers.describecluster import parse_describecluster
from cassandra_recovery.parsers.hints import parse_getmaxhintwindow, parse_listpendinghints, parse_statushandoff
from cassandra_recovery.parsers.info import parse_info
from cassandra_recovery.parsers.netstats import parse_netstats
from cassandra_recovery.parsers.repair import parse_repair
from cassandra_recovery.parsers.repair_admin import parse_repair_admin_list
from cassandra_recovery.parsers.sjk import parse_sjk_mx
from cassandra_recovery.parsers.status import parse_status
from cassandra_recovery.parsers.tablehistograms import parse_tablehistograms
from cassandra_recovery.parsers.toppartitions import parse_toppartitions
from cassandra_recovery.parsers.tpstats import parse_tpstats
from tests.unit.fixtures import FIXTURE_DIR, Fixture, fixture_names, load_fixture

pytestmark = pytest.mark.area("observation")

PARSERS: dict[str, Callable[[Fixture], object]] = {
    "toppartitions": lambda f: parse_toppartitions(f.stdout),
    "tablehistograms": lambda f: parse_tablehistograms(f.stdout),
    "status": lambda f: parse_status(f.stdout),
    "describecluster": lambda f: parse_describecluster(f.stdout),
    "info": lambda f: parse_info(f.stdout),
    "statushandoff": lambda f: parse_statushandoff(f.stdout),
    "listpendinghints": lambda f: parse_listpendinghints(f.stdout),
    "getmaxhintwindow": lambda f: parse_getmaxhintwindow(f.stdout),
    "tpstats": lambda f: parse_tpstats(f.stdout),
    "netstats": lambda f: parse_netstats(f.stdout),
    "repair": lambda f: parse_repair(f.stdout, f.stderr),
    "repair_admin": lambda f: parse_repair_admin_list(f.stdout),
    "compactionstats": lambda f: parse_compactionstats(f.stdout),
    "sjk": lambda f: parse_sjk_mx(f.stdout),  # JMX reads through `nodetool sjk mx`, parsed in sjk.py
}
NAMES = fixture_names()


def test_fixture_directory_is_populated() -> None:
    assert len(NAMES) >= 25


@pytest.mark.parametrize("name", NAMES)
def test_header_names_cassandra_5_and_a_scenario(name: str) -> None:
    first = (FIXTURE_DIR / f"{name}.txt").read_text().splitlines()[0]
    assert first.startswith("# Cassandra 5.0")
    fixture = load_fixture(name)
    assert fixture.header == first
    assert fixture.scenario.strip()
    assert fixture.command.startswith("nodetool ")
    # File names start with the nodetool subcommand they captured (some hold "_": repair_admin).
    assert name.startswith(fixture.command.split()[1] + "_")


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_has_a_parser_that_accepts_it(name: str) -> None:
    fixture = load_fixture(name)
    verb = fixture.command.split()[1]
    assert verb in PARSERS, f"no parser registered for {fixture.command}"
    assert PARSERS[verb](fixture) is not None


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_is_checked_for_facts_in_a_parser_test(name: str) -> None:
    here = Path(__file__)
    sources = "".join(p.read_text() for p in here.parent.glob("test_*.py") if p != here)
    assert f'"{name}"' in sources


def test_loader_splits_stderr_from_stdout() -> None:
    failed = load_fixture("repair_failed_node_down")
    assert failed.exit_code == 2
    assert failed.stdout.startswith("[2026-11-26 03:02:16,238] Starting repair command #8")
    assert failed.stdout.endswith("Repair command #8 finished with error\n")
    assert "# --- stderr ---" not in failed.stdout
    assert failed.stderr.startswith("error: Repair job has failed")
    assert "-- StackTrace --" in failed.stderr


def test_loader_without_stderr() -> None:
    ok = load_fixture("getmaxhintwindow_default.txt")
    assert (ok.exit_code, ok.stderr) == (0, "")
    assert ok.stdout == "Current max hint window: 10800000 ms\n"
    assert ok.scenario == "all nodes up"
    assert ok.command == "nodetool getmaxhintwindow (on node1)"
