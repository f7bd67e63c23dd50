"""`cassandra-recovery db upgrade|current|check`: the project's PostgreSQL schema, the only verb that changes it.

`upgrade` connects as the migration role (postgres.migration_user, its password from migration_password,
migration_password_file or the password source), which owns the schema; `current` and `check` as the runtime role
the processes use. With one role for both, `upgrade` works and warns that the timeline's guard can be dropped."""

from __future__ import annotations

import argparse
import json
import sys

from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("db", help="the PostgreSQL schema: upgrade it, or show/check its version")
    p.add_argument("action", choices=["upgrade", "current", "check"])


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cassandra_recovery.storage.migrate import guard_warning, require_current, runtime_role_of, states, upgrade
    from cassandra_recovery.storage.names import SchemaNames

    names = SchemaNames.from_settings(settings)
    conninfo = settings.postgres_conninfo()
    if args.action == "check":
        require_current(conninfo, names)  # SchemaNotCurrent: the CLI prints its one line and exits 1
        found = states(conninfo, names)
    elif args.action == "upgrade":
        before = {s.track: s.current for s in upgrade(settings.migration_conninfo(), names, runtime_role_of(settings))}
        found = states(conninfo, names)
        warning = guard_warning(settings, names)
        if warning is not None:
            print(f"warning: {warning}", file=sys.stderr)
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
