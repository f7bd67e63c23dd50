from __future__ import annotations

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.parsers.sjk import dropped_messages, hint_counters, parse_sjk_mx
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("observation")


def test_hint_counters_while_node3_is_down() -> None:
    c = hint_counters(load_fixture("sjk_hints_node3_down").stdout)
    assert c.created == {"127.0.0.4:7000": 7604}
    assert c.total_hints == 7604 and c.created_for("127.0.0.4") == 7604
    assert c.not_stored == {} and c.not_stored_for("127.0.0.4") == 0
    assert (c.succeeded, c.failed, c.timed_out, c.in_progress) == (5304, 0, 0, 0)


def test_dropped_mutations_after_thaw() -> None:
    d = dropped_messages(load_fixture("sjk_dropped_after_thaw").stdout)
    assert d["MUTATION_REQ"] == 600 and d["READ_REQ"] == 0
    assert len(d) > 50


def test_unknown_layout_names_the_command() -> None:
    with pytest.raises(ParseError, match="nodetool sjk mx"):
        parse_sjk_mx("Error: no such bean\n")
    with pytest.raises(ParseError, match="TotalHints"):
        hint_counters("org.apache.cassandra.metrics:type=HintsService,name=HintsFailed\n0\n")


def test_delivered_hints_per_target_come_from_the_delay_histogram_count() -> None:
    c = hint_counters(load_fixture("sjk_hints_delivered_after_thaw").stdout)
    assert c.created_for("127.0.0.4") == c.delivered_for("127.0.0.4") == 2360
    assert c.delivered_for("127.0.0.3") == 0


def test_a_target_named_with_its_resolved_host_counts_for_the_same_address() -> None:
    """Seen on the lab after a node came back: the JVM names the metric `host/ip.port` (InetAddress.toString);
    both forms of one target add up."""
    text = load_fixture("sjk_hints_node3_down").stdout
    resolved = text.replace("Hints_created-/127.0.0.4.7000", "Hints_created-127.0.0.4/127.0.0.4.7000")
    assert resolved != text
    assert hint_counters(resolved).created_for("127.0.0.4") == 7604
    both = text + "org.apache.cassandra.metrics:type=HintsService,name=Hints_created-127.0.0.4/127.0.0.4.7000\n6\n"
    assert hint_counters(both).created_for("127.0.0.4") == 7610
    with pytest.raises(ParseError, match="unexpected hint target"):
        hint_counters(text.replace("Hints_created-/127.0.0.4.7000", "Hints_created-127.0.0.4"))
