"""`lab down --postgres` and `lab leftovers`: stop, then prove gone, every process the project starts here."""

from __future__ import annotations

from collections.abc import Callable

from cassandra_recovery.lab import leftovers
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.settings import Settings

Progress = Callable[[str], None]
# Stopped before the Prefect server and PostgreSQL they talk to, so none of them logs a storm of errors.
SERVICE_KINDS = ("pipeline", "flow-run", "prometheus", "alertmanager")


def down(
    settings: Settings,
    lab: Lab | None,
    keep_data: bool,
    prefect: bool,
    postgres: bool,
    say: Progress,
    drop_postgres: bool = False,
) -> int:
    """The lab's JVMs (unless lab is None); with prefect or postgres also the lab's services, the Prefect server
    and, with postgres, the PostgreSQL cluster on the configured port. Returns 1 when something would not stop."""
    if lab is not None:
        lab.down(keep_data=keep_data)
    if not (prefect or postgres):
        return 0
    from cassandra_recovery.lab.prefect_server import stop_prefect_server

    services = [p for p in leftovers.scan(settings.lab.base_dir, settings.lab.user_prefix) if p.kind in SERVICE_KINDS]
    for p in services:
        say(f"stopping {p.describe()}")
    survivors = leftovers.stop(services)
    stop_prefect_server(settings, progress=say)
    survivors += leftovers.stop([p for p in leftovers.scan(settings.lab.base_dir) if p.kind == "prefect-server"])
    if postgres:
        from cassandra_recovery.lab.postgres import stop_postgres

        stop_postgres(progress=say, port=settings.postgres.port)
    if drop_postgres:
        from cassandra_recovery.lab.postgres import drop_throwaway_cluster

        drop_throwaway_cluster(settings.postgres.port, progress=say)
    for p in survivors:
        say(f"did not stop: {p.describe()}")
    return 1 if survivors else 0


def report_leftovers(settings: Settings, everyone: bool, stop: bool) -> int:
    """Print the project's processes still alive (this lab's, or any with everyone), and stop them with stop;
    exit 1 when there were any, so a caller both cleans up and learns that something was left behind."""
    found = leftovers.scan(None if everyone else settings.lab.base_dir)
    for p in found:
        print(p.describe())
    if stop and found:
        for p in leftovers.stop(found):
            print(f"did not stop: {p.describe()}")
    return 1 if found else 0


def print_running(settings: Settings) -> None:
    """What this lab leaves running on this machine, and the one command that stops all of it."""
    from cassandra_recovery.lab.postgres import online_clusters

    found = leftovers.scan(settings.lab.base_dir, settings.lab.user_prefix)
    pg = online_clusters(settings.postgres.port)
    if not found and not pg:
        return
    print("left running:")
    for p in found:
        print(f"  {p.describe()}")
    for c in pg:
        print(f"  postgresql     cluster {c} on port {settings.postgres.port}")
    print("stop all of it with: .venv/bin/cassandra-recovery lab down --postgres")
