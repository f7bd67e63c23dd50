"""Faults injected on purpose (tests, game days), each undone even if the process that injected it dies."""
