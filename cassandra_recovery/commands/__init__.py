"""One module per CLI verb group; each exposes add_parser(sub) and run(args, settings) -> exit code."""

from __future__ import annotations

from cassandra_recovery.commands.output import Reporter
from cassandra_recovery.progress import Progress

__all__ = ["Progress", "Reporter", "progress"]


def progress(prefix: str) -> Reporter:
    """Progress on stderr (lines, and bars for counted work on a terminal), so --json output on stdout stays
    machine-readable."""
    return Reporter(prefix)
