"""`nodetool describecluster`: name, snitch, partitioner, schema versions, node counts, DCs, versions, keyspaces."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool describecluster"
UNREACHABLE = "UNREACHABLE"

# Section titles at column 0; "Data Centers: " really is printed with a trailing blank.
_SECTIONS = {
    "Cluster Information:": "cluster",
    "Stats for all nodes:": "stats",
    "Data Centers:": "datacenters",
    "Database versions:": "versions",
    "Keyspaces:": "keyspaces",
}
_KEY_VALUE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]*): (?P<value>\S.*)$")
# Schema versions are UUIDs; nodes that do not answer the schema-version request are grouped
# under the pseudo-version UNREACHABLE.
_SCHEMA_VERSION = re.compile(r"^(?P<version>[0-9a-fA-F-]{36}|UNREACHABLE): \[(?P<addresses>[^\]]*)\]$")
_DATACENTER = re.compile(r"^(?P<dc>\S+) #Nodes: (?P<nodes>\d+) #Down: (?P<down>\d+)$")
_DB_VERSION = re.compile(r"^(?P<version>[0-9][\w.-]*): \[(?P<addresses>[^\]]*)\]$")
_KEYSPACE = re.compile(r"^(?P<name>\w+) -> Replication class: (?P<cls>\S+) \{(?P<options>[^}]*)\}$")
_STATS = ("Live", "Joining", "Moving", "Leaving", "Unreachable")


@dataclass(frozen=True)
class DatacenterSummary:
    nodes: int
    down: int


@dataclass(frozen=True)
class KeyspaceReplication:
    strategy: str  # as printed: short class name, e.g. NetworkTopologyStrategy
    options: dict[str, str]  # e.g. {"dc1": "3"} or {"replication_factor": "2"}


@dataclass(frozen=True)
class ClusterDescription:
    name: str
    snitch: str
    dynamic_snitch: bool | None
    partitioner: str
    schema_versions: dict[str, list[str]]  # version (or "UNREACHABLE") -> addresses
    live: int
    joining: int
    moving: int
    leaving: int
    unreachable_count: int
    datacenters: dict[str, DatacenterSummary]
    database_versions: dict[str, list[str]]  # release -> "addr:port"
    keyspaces: dict[str, KeyspaceReplication]

    @property
    def unreachable(self) -> list[str]:
        return list(self.schema_versions.get(UNREACHABLE, []))

    @property
    def real_schema_versions(self) -> dict[str, list[str]]:
        return {v: a for v, a in self.schema_versions.items() if v != UNREACHABLE}

    @property
    def schema_agreement(self) -> bool:
        # An unreachable node's schema is unknown, so agreement cannot be claimed while one exists.
        return len(self.real_schema_versions) == 1 and not self.unreachable


def _addresses(raw: str) -> list[str]:
    return [a.strip() for a in raw.split(",") if a.strip()]


def _options(raw: str, text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ParseError(COMMAND, f"replication option without '=': {item!r}", text)
        options[key] = value
    return options


def parse_describecluster(text: str) -> ClusterDescription:
    section: str | None = None
    seen: set[str] = set()
    info: dict[str, str] = {}
    schema: dict[str, list[str]] = {}
    stats: dict[str, int] = {}
    datacenters: dict[str, DatacenterSummary] = {}
    db_versions: dict[str, list[str]] = {}
    keyspaces: dict[str, KeyspaceReplication] = {}

    for raw in text.splitlines():
        line = raw.strip()
        # Blank lines separate sections and also, in 5.0, successive schema versions.
        if not line:
            continue
        if not raw[0].isspace():
            if line.startswith("Note: "):
                # Printed after the keyspaces when their replication differs (ownership is then meaningless).
                continue
            section = _SECTIONS.get(line)
            if section is None:
                raise ParseError(COMMAND, f"unknown section {line!r}", text)
            seen.add(section)
            continue
        if section == "cluster":
            if m := _SCHEMA_VERSION.match(line):
                if "Schema versions" not in info:
                    raise ParseError(COMMAND, "schema version before 'Schema versions:'", text)
                schema[m.group("version")] = _addresses(m.group("addresses"))
            elif line == "Schema versions:":
                info["Schema versions"] = ""
            elif m := _KEY_VALUE.match(line):
                info[m.group("key")] = m.group("value")
            else:
                raise ParseError(COMMAND, f"unexpected cluster line {line!r}", text)
        elif section == "stats":
            key, _, value = line.partition(": ")
            if key not in _STATS or not value.isdigit():
                raise ParseError(COMMAND, f"unexpected stats line {line!r}", text)
            stats[key] = int(value)
        elif section == "datacenters":
            if not (m := _DATACENTER.match(line)):
                raise ParseError(COMMAND, f"unexpected data center line {line!r}", text)
            datacenters[m.group("dc")] = DatacenterSummary(int(m.group("nodes")), int(m.group("down")))
        elif section == "versions":
            if not (m := _DB_VERSION.match(line)):
                raise ParseError(COMMAND, f"unexpected database version line {line!r}", text)
            db_versions[m.group("version")] = _addresses(m.group("addresses"))
        elif section == "keyspaces":
            if not (m := _KEYSPACE.match(line)):
                raise ParseError(COMMAND, f"unexpected keyspace line {line!r}", text)
            keyspaces[m.group("name")] = KeyspaceReplication(m.group("cls"), _options(m.group("options"), text))
        else:
            raise ParseError(COMMAND, f"indented line outside any section: {line!r}", text)

    # Every section is printed by 5.0 even for a one-node cluster; a missing one means truncated output.
    missing = [title for title, key in _SECTIONS.items() if key not in seen]
    missing += [k for k in ("Name", "Snitch", "Partitioner") if k not in info]
    missing += [f"{k}:" for k in _STATS if k not in stats]
    if missing:
        raise ParseError(COMMAND, f"missing {', '.join(missing)}", text)
    if not schema:
        raise ParseError(COMMAND, "no schema versions listed", text)
    dynamic = info.get("DynamicEndPointSnitch")
    return ClusterDescription(
        name=info["Name"],
        snitch=info["Snitch"],
        dynamic_snitch=None if dynamic is None else dynamic == "enabled",
        partitioner=info["Partitioner"],
        schema_versions=schema,
        live=stats["Live"],
        joining=stats["Joining"],
        moving=stats["Moving"],
        leaving=stats["Leaving"],
        unreachable_count=stats["Unreachable"],
        datacenters=datacenters,
        database_versions=db_versions,
        keyspaces=keyspaces,
    )
