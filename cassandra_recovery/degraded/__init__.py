"""Degraded-mode service library: source-of-truth fallback, durable outbox, breaker, compare."""
