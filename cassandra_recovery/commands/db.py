"""`cassandra-recovery db upgrade|current|check`: the project's PostgreSQL schema, the only verb that changes it.

Run it as the role that owns the tables (the lab's `cassandra_recovery` role owns its database and everything in
it; elsewhere point CASSANDRA_RECOVERY_POSTGRES__USER/__PASSWORD at the owner for this one command)."""

from __future__ import annotations

import argparse
import json

from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("db", help="the PostgreSQL schema: upgrade it, or show/check its version")
    p.add_argument("action", choices=["upgrade", "current", "check"])


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.storage.migrate import require_current, states, upgrade
    from cassandra_recovery.storage.names import SchemaNames

    names = SchemaNames.from_settings(settings)
    conninfo = settings.postgres_conninfo()
    if args.action == "check":
        require_current(conninfo, names)  # SchemaNotCurrent: the CLI prints its one line and exits 1
        found = states(conninfo, names)
    elif args.action == "upgrade":
        before = {s.track: s.current for s in upgrade(conninfo, names)}
        found = states(conninfo, names)
    else:
        found = states(conninfo, names)
    doc = [{"track": s.track, "version_table": s.version_table, "current": s.current, "head": s.head} for s in found]
    if args.action == "upgrade":
        for d in doc:
            d["before"] = before[str(d["track"])]
    if args.json:
        print(json.dumps(doc))
        return 0
    for d in doc:
        line = f"{d['track']}: {d['current'] or 'none'} (head {d['head']}, table {d['version_table']})"
        if args.action == "upgrade":
            line += (
                " upgraded from " + str(d["before"] or "none") if d["before"] != d["current"] else " already current"
            )
        print(line)
    return 0
