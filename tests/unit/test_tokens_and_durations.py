from __future__ import annotations

import pytest

from cassandra_recovery.logic.durations import parse_duration_ms
from cassandra_recovery.logic.tokens import MIN_TOKEN, balanced_tokens

pytestmark = pytest.mark.area("lab")


def test_three_single_token_nodes_match_the_documented_ring() -> None:
    assert balanced_tokens(3) == [[-9223372036854775808], [-3074457345618258603], [3074457345618258602]]


@pytest.mark.parametrize(("nodes", "per_node"), [(1, 1), (3, 4), (5, 16), (4, 256)])
def test_tokens_are_distinct_sorted_interleaved_and_in_range(nodes: int, per_node: int) -> None:
    ring = balanced_tokens(nodes, per_node)
    flat = sorted(t for node in ring for t in node)
    assert len(ring) == nodes and all(len(n) == per_node for n in ring)
    assert len(set(flat)) == nodes * per_node
    assert flat[0] == MIN_TOKEN and flat[-1] < 2**63
    owner = {t: i for i, node in enumerate(ring) for t in node}
    # walking the ring, owners go round-robin: every node's ranges are spread out
    assert [owner[t] for t in flat] == [k % nodes for k in range(nodes * per_node)]


def test_bad_token_request() -> None:
    with pytest.raises(ValueError):
        balanced_tokens(0)


@pytest.mark.parametrize(
    ("text", "ms"), [("20s", 20_000), ("500ms", 500), ("3h", 10_800_000), ("1d", 86_400_000), (" 2m ", 120_000)]
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["20", "20x", "-5s", "1.5h", "", "s"])
def test_bad_durations_name_the_accepted_form(text: str) -> None:
    with pytest.raises(ValueError, match="expected an integer and a unit"):
        parse_duration_ms(text)
