"""Capture real query traces from the running lab into tests/fixtures/traces (keyspace shop must hold rows).

Each file: a first line naming the Cassandra version and scenario, then `source<TAB>description` per event and a
`--- page` line between pages.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.settings import Settings

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "traces"
LO, HI = -9223372036854775808, -3074457345618258603


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with CqlClient(Settings().cluster("lab")) as cql:
        version = cql.release_version()
        s = cql.session
        wanted = {"local": False, "remote": False}
        for _ in range(60):
            for host in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                st = SimpleStatement(
                    "SELECT id, version FROM shop.orders WHERE token(id) > %s AND token(id) <= %s",
                    consistency_level=ConsistencyLevel.ONE,
                    fetch_size=300,
                )
                rs = s.execute(st, (LO, HI), trace=True, host=cql.host(host))
                list(rs)
                traces = rs.get_all_query_traces()
                sources = {str(e.source) for t in traces for e in t.events if e.description.startswith("Executing")}
                kind = "local" if sources == {host} else "remote"
                if wanted[kind]:
                    continue
                wanted[kind] = True
                lines = [f"# Cassandra {version}; scenario: paged range read pinned to {host}, served {kind}ly"]
                for i, t in enumerate(traces):
                    if i:
                        lines.append("--- page")
                    lines += [f"{e.source}\t{e.description}" for e in t.events]
                (OUT / f"range_read_{kind}.txt").write_text("\n".join(lines) + "\n")
            if all(wanted.values()):
                return 0
            time.sleep(0.1)
    print(f"not captured: {[k for k, v in wanted.items() if not v]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
