"""`nodetool toppartitions KS TABLE MS`: one table per sampler (hottest partitions, slowest reads, ...).

Each sampler prints its title, then either "Nothing recorded during sampling period..." or a table whose
first column is blank. Cells are separated by single spaces and padded to the widest cell, so a partition key
or a query containing spaces is recovered by anchoring the numeric columns at the end of the line (leading
and trailing blanks of a key are lost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool toppartitions"
NOTHING = "Nothing recorded during sampling period..."

_FREQ = ("Table", "Partition", "Count", "+/-")
# title -> (attribute of TopPartitions, header cells)
_SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Frequency of reads by partition": ("reads", _FREQ),
    "Frequency of writes by partition": ("writes", _FREQ),
    "Frequency of CAS contention by partition": ("cas_contention", _FREQ),
    # 4.0 derived the title from the sampler name
    "Frequency of cas contentions by partition": ("cas_contention", _FREQ),
    "Longest read query times": ("read_times", ("Query", "Microseconds")),
    "Partitions read with the most rows": ("most_rows", ("Table", "Partition", "Rows")),
    "Partitions read with the most tombstones": ("most_tombstones", ("Table", "Partition", "Tombstones")),
    "Partitions read with the most sstables": ("most_sstables", ("Table", "Partition", "SSTables")),
    "Max mutation size by partition": ("max_mutation_size", ("Table", "Partition", "Bytes")),
}
_FREQ_ROW = re.compile(r"^(?P<table>\S+)\s+(?P<partition>.+?)\s+(?P<count>\d+)\s+(?P<error>\d+)$")
_COUNT_ROW = re.compile(r"^(?P<table>\S+)\s+(?P<partition>.+?)\s+(?P<count>\d+)$")
_QUERY_ROW = re.compile(r"^(?P<query>.+?)\s+(?P<micros>\d+)$")


@dataclass(frozen=True)
class PartitionSample:
    table: str  # "keyspace.table"
    partition: str  # the partition key as Cassandra prints it (components of a composite key joined by ':')
    count: int  # reads / writes / contentions, or rows, tombstones, sstables, bytes per section
    error: int | None  # the +/- of the frequency samplers; None for the other sections


@dataclass(frozen=True)
class QueryTime:
    query: str
    micros: int


@dataclass(frozen=True)
class TopPartitions:
    reads: list[PartitionSample] = field(default_factory=list)
    writes: list[PartitionSample] = field(default_factory=list)
    read_times: list[QueryTime] = field(default_factory=list)
    most_rows: list[PartitionSample] = field(default_factory=list)
    most_tombstones: list[PartitionSample] = field(default_factory=list)
    most_sstables: list[PartitionSample] = field(default_factory=list)
    max_mutation_size: list[PartitionSample] = field(default_factory=list)
    cas_contention: list[PartitionSample] = field(default_factory=list)
    sections: tuple[str, ...] = ()  # attributes whose sampler was printed (`-a` can select a subset)


_HEADER_OF = {attr: header for attr, header in _SECTIONS.values()}


def _sample(attr: str, line: str, text: str) -> PartitionSample:
    m = (_FREQ_ROW if _HEADER_OF[attr] == _FREQ else _COUNT_ROW).match(line)
    if m is None:
        raise ParseError(COMMAND, f"unexpected row {line!r} in section {attr}", text)
    error = m.groupdict().get("error")
    return PartitionSample(
        table=m.group("table"),
        partition=m.group("partition"),
        count=int(m.group("count")),
        error=None if error is None else int(error),
    )


def _query_time(line: str, text: str) -> QueryTime:
    m = _QUERY_ROW.match(line)
    if m is None:
        raise ParseError(COMMAND, f"unexpected row {line!r} in section read_times", text)
    return QueryTime(query=m.group("query"), micros=int(m.group("micros")))


def parse_toppartitions(text: str) -> TopPartitions:
    samples: dict[str, list[PartitionSample]] = {}
    read_times: list[QueryTime] = []
    sections: list[str] = []
    attr: str | None = None
    state = "none"  # after a title: "title"; after its header: "rows"; after "Nothing recorded": "empty"
    for raw in text.splitlines():
        line = raw.strip()  # rows start with the blank first column and are padded with trailing blanks
        if not line:
            continue
        if line.endswith(":") and line[:-1] in _SECTIONS:
            if state == "title":
                raise ParseError(COMMAND, f"section {attr} has neither a table nor {NOTHING!r}", text)
            attr, state = _SECTIONS[line[:-1]][0], "title"
            if attr in sections:
                raise ParseError(COMMAND, f"section {line!r} printed twice", text)
            sections.append(attr)
            if attr != "read_times":
                samples[attr] = []
            continue
        if attr is None:
            raise ParseError(COMMAND, f"unexpected line {line!r} before any sampler section", text)
        if state == "title" and line == NOTHING:
            state = "empty"
        elif state == "title" and tuple(line.split()) == _HEADER_OF[attr]:
            state = "rows"
        elif state == "rows" and attr == "read_times":
            read_times.append(_query_time(line, text))
        elif state == "rows":
            samples[attr].append(_sample(attr, line, text))
        else:
            raise ParseError(COMMAND, f"unexpected line {line!r} in section {attr}", text)
    if not sections:
        raise ParseError(COMMAND, "no sampler section found", text)
    if state == "title":
        raise ParseError(COMMAND, f"section {attr} is truncated", text)
    return TopPartitions(
        reads=samples.get("reads", []),
        writes=samples.get("writes", []),
        read_times=read_times,
        most_rows=samples.get("most_rows", []),
        most_tombstones=samples.get("most_tombstones", []),
        most_sstables=samples.get("most_sstables", []),
        max_mutation_size=samples.get("max_mutation_size", []),
        cas_contention=samples.get("cas_contention", []),
        sections=tuple(sections),
    )
