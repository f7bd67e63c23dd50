"""Verification: per-replica convergence proven by traced reads, narrowing to keys, targeted fixes."""
