"""Attribution of a read to the replica that served it, on traces captured from the real lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from cassandra_recovery.logic.trace_proof import ProofStep, TraceEvent, attribute, next_read

pytestmark = pytest.mark.area("verification")

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "traces"
RF3 = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def pages(name: str) -> list[list[TraceEvent]]:
    out: list[list[TraceEvent]] = [[]]
    for line in (FIX / name).read_text().splitlines()[1:]:
        if line == "--- page":
            out.append([])
            continue
        src, desc = line.split("\t", 1)
        out[-1].append(TraceEvent(src, desc))
    return out


def test_local_read_is_attributed_to_the_pinned_replica() -> None:
    traces = pages("range_read_local.txt")
    pinned = traces[0][0].source
    assert attribute(traces, RF3).served_by == pinned


def test_a_read_the_snitch_sent_elsewhere_is_attributed_to_the_replica_that_ran_it() -> None:
    traces = pages("range_read_remote.txt")
    coordinator = traces[0][0].source
    got = attribute(traces, RF3)
    assert got.served_by is not None and got.served_by != coordinator
    assert got.served_by == "127.0.0.2"


def test_pages_from_two_replicas_are_unproven() -> None:
    first = pages("range_read_remote.txt")[0]  # served by 127.0.0.2
    second = [TraceEvent("127.0.0.3" if e.source == "127.0.0.2" else e.source, e.description) for e in first]
    got = attribute([first, second], RF3)
    assert got.served_by is None and "several replicas" in got.reason


def test_served_by_a_node_outside_the_range_is_unproven() -> None:
    got = attribute(pages("range_read_remote.txt"), ("127.0.0.3", "127.0.0.4"))
    assert got.served_by is None and "not a replica" in got.reason


def test_digest_mismatch_or_speculation_is_unproven() -> None:
    traces = pages("range_read_local.txt")
    src = traces[0][0].source
    for text in ("Digest mismatch: Mismatch for key DecoratedKey(1, 6b31)", "speculating read retry on /127.0.0.3"):
        got = attribute([[*traces[0], TraceEvent(src, text)]], RF3)
        assert got.served_by is None and text[:10] in got.reason


def test_missing_or_incomplete_traces_are_unproven() -> None:
    assert attribute([], RF3).reason == "no trace returned"
    head = [e for e in pages("range_read_local.txt")[0] if not e.description.startswith(("Executing", "Read "))]
    assert "no data step" in attribute([head], RF3).reason


OTHERS = ["127.0.0.3", "127.0.0.4"]


def _plan(attempts: int, sent_elsewhere: bool = False) -> list[ProofStep | None]:
    return [next_read("127.0.0.2", OTHERS, a, 0.0, 60.0, 12, sent_elsewhere) for a in range(attempts)]


def test_the_replica_coordinates_every_other_read_and_the_other_nodes_take_turns_in_between() -> None:
    assert [s.coordinator if s else None for s in _plan(6)] == [
        "127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.4", "127.0.0.2", "127.0.0.3",
    ]  # fmt: skip
    assert next_read("127.0.0.2", [], 1, 0.0, 60.0, 12, False) == ProofStep("127.0.0.2")


def test_latency_is_refreshed_only_before_reads_the_replica_coordinates_after_its_snitch_sent_one_away() -> None:
    assert not any(s and s.refresh for s in _plan(6))
    steps = _plan(4, sent_elsewhere=True)
    assert [(s.coordinator, s.refresh) for s in steps if s] == [
        ("127.0.0.2", True), ("127.0.0.3", False), ("127.0.0.2", True), ("127.0.0.4", False),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("attempt", "elapsed_s", "more"),
    [
        (0, 0.0, True),  # the first read always happens
        (0, 999.0, True),  # fewer than the minimum: read again whatever the time
        (11, 999.0, True),
        (12, 59.9, True),  # the minimum done, the budget not spent: read again
        (500, 59.9, True),
        (12, 60.0, False),  # both spent: the copy stays unproven
        (13, 61.0, False),
    ],
)
def test_reads_stop_once_both_the_minimum_attempts_and_the_time_budget_are_spent(
    attempt: int, elapsed_s: float, more: bool
) -> None:
    assert (next_read("127.0.0.2", OTHERS, attempt, elapsed_s, 60.0, 12, True) is not None) is more
