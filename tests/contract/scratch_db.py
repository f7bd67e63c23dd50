"""Databases of a contract test's own on the contract tier's PostgreSQL, made and dropped as the superuser."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cassandra_recovery.settings import Settings


def psql_as_postgres(base: Settings, statement: str, db: str) -> None:
    """DDL as the postgres superuser. Names go in as psql variables, quoted where used: :"db" (the database),
    :"role" (the runtime role) and :"owner" (the migration role, or the runtime role when there is one role)."""
    owner = base.postgres.migration_user or base.postgres.user
    psql = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
    names = ["-v", f"db={db}", "-v", f"role={base.postgres.user}", "-v", f"owner={owner}"]
    argv = [*psql, "-p", str(base.postgres.port), *names, "-f", "-"]
    subprocess.run(argv, input=statement, text=True, check=True, capture_output=True, timeout=60, cwd="/")


@contextmanager
def scratch_databases(base: Settings, prefix: str) -> Iterator[Callable[[str], Settings]]:
    """make(owner) -> settings for a new empty database owned by `owner` ("owner" or "role", the psql variables
    above); every database made is dropped on exit."""
    made: list[str] = []

    def make(owner: str) -> Settings:
        if owner not in ("owner", "role"):
            raise ValueError(f"owner must be 'owner' or 'role', not {owner!r}")
        db = f"{prefix}_{uuid.uuid4().hex[:12]}"
        psql_as_postgres(base, f'CREATE DATABASE :"db" OWNER :"{owner}";', db)
        made.append(db)
        return base.model_copy(update={"postgres": base.postgres.model_copy(update={"dbname": db})})

    try:
        yield make
    finally:
        # One psql for all of them (each runuser+psql costs ~0.5 s); the names are ours (hex), set as variables.
        drops = "".join(f'\\set db {db}\nDROP DATABASE IF EXISTS :"db" WITH (FORCE);\n' for db in made)
        if made:
            psql_as_postgres(base, drops, made[0])
