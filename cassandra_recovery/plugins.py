"""Implementations chosen by configuration, by name, among those the installed packages register as entry points
(Medusa's pattern): the workflow engine, where clusters come from, node provisioners, generated credentials. The
library names a group and a setting; it never imports an implementation, so production code does not know the lab.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from cassandra_recovery.errors import ConfigError

ORCHESTRATORS = "cassandra_recovery.orchestrators"
CLUSTER_SOURCES = "cassandra_recovery.cluster_sources"
PROVISIONERS = "cassandra_recovery.provisioners"
POSTGRES_PASSWORDS = "cassandra_recovery.postgres_passwords"


@cache  # installed metadata does not change while a process runs, and scanning it costs milliseconds per call
def _group(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def registered(group: str) -> list[str]:
    return sorted(_group(group))


def load(group: str, name: str, what: str) -> Any:
    """The object registered as `name` in `group`; ConfigError naming the registered ones otherwise."""
    found = _group(group)
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is the project installed? run bin/install)"
        raise ConfigError(f"unknown {what} {name!r}: registered are {known}")
    return found[name].load()
