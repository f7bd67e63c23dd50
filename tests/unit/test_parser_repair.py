"""`nodetool repair` parser on the captured Cassandra 5.0 fixtures."""

from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.repair import parse_repair
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")

MIN = -9223372036854775808
THIRD = 3074457345618258602
RANGES = [(THIRD, MIN), (MIN, -THIRD - 1), (-THIRD - 1, THIRD)]
TS = "[2026-11-26 03:05:00,000]"
START = (
    f"{TS} Starting repair command #9 (b3d015d0-e945-11f1-92b3-dd26c1266f39), repairing keyspace fixtures "
    "with repair options (parallelism: parallel, primary range: true, incremental: false, job threads: 1, "
    "ColumnFamilies: [kv, other], dataCenters: [], hosts: [], previewKind: ALL, # of ranges: 1)\n"
)


def test_full_repair_ok() -> None:
    f = load_fixture("repair_full_ok")
    r = parse_repair(f.stdout, f.stderr)
    assert (r.command_number, r.parent_session_id) == (6, "b2a37cb0-e945-11f1-92b3-dd26c1266f39")
    assert r.keyspace == "fixtures"
    assert (r.parallelism, r.primary_range, r.incremental, r.preview_kind, r.range_count) == (
        "parallel",
        False,
        False,
        "NONE",
        3,
    )
    assert r.options["ColumnFamilies"] == "[]"
    assert r.options["repairPaxos"] == "true"
    assert r.options_raw is not None and r.options_raw.startswith("parallelism: parallel")
    (session,) = r.sessions
    assert session.session_id == "b2ac0830-e945-11f1-92b3-dd26c1266f39"
    assert session.ranges == RANGES
    assert session.progress == 57 and session.ok
    assert r.success and r.finished and r.error is None and r.stderr_error is None
    assert r.preview_in_sync is None
    assert r.duration_seconds == 0
    assert f.exit_code == 0


def test_preview_in_sync() -> None:
    f = load_fixture("repair_preview_in_sync")
    r = parse_repair(f.stdout, f.stderr)
    assert r.command_number == 7
    assert r.preview_kind == "ALL"
    assert r.options["repairPaxos"] == "false"
    assert r.preview_in_sync is True
    assert r.preview_summary == []
    assert r.success and r.duration_seconds == 0
    assert r.sessions[0].ranges == RANGES


def test_failed_node_down() -> None:
    f = load_fixture("repair_failed_node_down")
    r = parse_repair(f.stdout, f.stderr)
    assert f.exit_code == 2
    assert r.command_number == 8
    assert r.success is False
    assert r.finished is True
    assert r.error == "Endpoint not alive: /127.0.0.4:7000"
    assert r.stderr_error is not None and "Endpoint not alive: /127.0.0.4:7000" in r.stderr_error
    assert r.sessions == []
    assert r.duration_seconds is None


def test_failed_without_stderr_still_reports_error() -> None:
    r = parse_repair(load_fixture("repair_failed_node_down").stdout)
    assert not r.success and r.error == "Endpoint not alive: /127.0.0.4:7000" and r.stderr_error is None


def test_preview_out_of_sync_summary() -> None:
    summary = (
        "Total estimated streaming: 2 ranges, 2 sstables, 1.172KiB bytes\n"
        "    fixtures.kv - 2 ranges, 2 sstables, 1.172KiB bytes\n"
    )
    text = (
        START
        + f"{TS} Repair session b3d14e50-e945-11f1-92b3-dd26c1266f39 for range [(1,2]] finished (progress: 50%)\n"
        + f"{TS} Preview complete\n"
        + summary
        + f"{TS} Repair preview completed successfully; Preview complete\n"
        + summary
        + f"{TS} Repair command #9 finished in 1 minute 2 seconds\n"
    )
    r = parse_repair(text)
    assert r.preview_in_sync is False
    assert r.preview_summary == [line.strip() for line in summary.splitlines()]
    assert r.duration_seconds == 62
    assert r.primary_range is True
    assert r.options["ColumnFamilies"] == "[kv, other]"
    assert r.sessions[0].ranges == [(1, 2)]
    assert r.success


def test_failed_session() -> None:
    text = (
        START + f"{TS} Repair session b3d14e50-e945-11f1-92b3-dd26c1266f39 for range [(1,2], (2,3]] "
        "failed with error Validation failed in /127.0.0.4:7000\n" + f"{TS} Repair command #9 finished with error\n"
    )
    r = parse_repair(text)
    assert r.sessions[0].error == "Validation failed in /127.0.0.4:7000"
    assert r.sessions[0].ranges == [(1, 2), (2, 3)]
    assert not r.success and r.error == "Validation failed in /127.0.0.4:7000"


def test_cut_short_is_not_finished() -> None:
    r = parse_repair(START)
    assert (r.finished, r.success, r.error) == (False, False, None)


def test_nothing_to_repair_for_rf1() -> None:
    r = parse_repair(f"{TS} Replication factor is 1. No repair is needed for keyspace 'solo'\n")
    assert (r.success, r.keyspace, r.command_number) == (True, "solo", None)


def test_error_before_start_only_on_stderr() -> None:
    r = parse_repair("", "error: Keyspace [nope] does not exist.\n-- StackTrace --\njava.lang.Exception\n")
    assert r.command_number is None and not r.success
    assert r.error == "Keyspace [nope] does not exist."


def test_garbage_raises_naming_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool repair") as err:
        parse_repair("Repair went fine, trust me\n")
    assert err.value.command == "nodetool repair"


def test_no_output_at_all_raises() -> None:
    with pytest.raises(ParseError, match="no repair output"):
        parse_repair("", "")


def test_two_commands_in_one_output_raise() -> None:
    with pytest.raises(ParseError, match="several repair commands"):
        parse_repair(START + START)


def test_timestamped_lines_without_start_raise() -> None:
    text = "".join(load_fixture("repair_full_ok").stdout.splitlines(keepends=True)[1:])
    with pytest.raises(ParseError, match="no 'Starting repair command' line"):
        parse_repair(text)
