"""One module per CLI verb group; each exposes add_parser(sub) and run(args, settings) -> exit code."""

from __future__ import annotations

from cassandra_recovery.commands.output import Reporter
from cassandra_recovery.orchestrator import Orchestrator, load_orchestrator
from cassandra_recovery.progress import Progress
from cassandra_recovery.settings import Settings

__all__ = ["Progress", "Reporter", "engine_here", "progress"]


def progress(prefix: str) -> Reporter:
    """Progress on stderr (lines, and bars for counted work on a terminal), so --json output on stdout stays
    machine-readable."""
    return Reporter(prefix)


def engine_here(settings: Settings, say: Progress) -> Orchestrator:
    """The configured orchestrator, its server started first when it is the project's own (the lab's Prefect):
    for verbs that run a flow in this process or start a deployment."""
    from cassandra_recovery.lab.prefect_server import ensure_prefect_server

    engine = load_orchestrator(settings)
    ensure_prefect_server(settings, progress=say)
    return engine
