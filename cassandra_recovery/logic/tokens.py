"""Balanced Murmur3 token assignment for a ring of nodes with N tokens each."""

from __future__ import annotations

MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1
RING_SIZE = 2**64


def balanced_tokens(nodes: int, tokens_per_node: int = 1) -> list[list[int]]:
    """Tokens per node, evenly spaced over the ring and interleaved between nodes.

    Token k of T = nodes * tokens_per_node is k * 2^64 / T - 2^63; node i takes
    k = i, i + nodes, i + 2 * nodes, ... so each node's ranges are spread around the ring
    (what vnodes give) while the layout stays deterministic.
    """
    if nodes < 1 or tokens_per_node < 1:
        raise ValueError("nodes and tokens_per_node must be >= 1")
    total = nodes * tokens_per_node
    ring = [k * RING_SIZE // total + MIN_TOKEN for k in range(total)]
    return [ring[i::nodes] for i in range(nodes)]
