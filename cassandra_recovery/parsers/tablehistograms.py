"""`nodetool tablehistograms KS TABLE`: latency, sstables-per-read, partition size and cell count percentiles.

The column order changed between releases (2.x/3.x printed SSTables first), so columns are mapped by the
header names. NaN (no SSTables yet, or an overflowed histogram) becomes None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool tablehistograms"
NO_SSTABLES = "No SSTables exists, unable to calculate 'Partition Size' and 'Cell Count' percentiles"

_TITLE = re.compile(r"^(?P<keyspace>\S+)/(?P<table>\S+) histograms$")
_COLUMNS = {
    "Read Latency": "read_latency_micros",
    "Write Latency": "write_latency_micros",
    "SSTables": "sstables",
    "Partition Size": "partition_size_bytes",
    "Cell Count": "cell_count",
}
_UNITS = {"(micros)", "(bytes)"}
# Overflowed histograms print these and NaN in the affected percentiles.
_WARNING = re.compile(r"^(Row sizes|Column counts) are larger than \d+, unable to calculate percentiles$")
_NUM = r"(?:-?[\d.]+(?:E-?\d+)?|NaN)"
_ROW = re.compile(rf"^(?P<label>[\d.]+%|Min|Max)((?:\s+{_NUM}){{{len(_COLUMNS)}}})$")
LABELS = ("50%", "75%", "95%", "98%", "99%", "Min", "Max")


@dataclass(frozen=True)
class HistogramRow:
    label: str  # "50%" ... "99%", "Min", "Max"
    read_latency_micros: float | None
    write_latency_micros: float | None
    sstables: float | None  # sstables touched per read
    partition_size_bytes: float | None
    cell_count: float | None


@dataclass(frozen=True)
class TableHistograms:
    keyspace: str
    table: str
    rows: dict[str, HistogramRow]  # by label, in printed order
    no_sstables: bool  # "No SSTables exists": partition size and cell count are unknown (None)
    warnings: tuple[str, ...] = ()  # overflow messages

    def row(self, label: str) -> HistogramRow:
        if label not in self.rows:
            raise KeyError(f"no {label!r} row in the {self.keyspace}.{self.table} histograms")
        return self.rows[label]


def _num(raw: str) -> float | None:
    return None if raw == "NaN" else float(raw)


def parse_tablehistograms(text: str) -> TableHistograms:
    title: re.Match[str] | None = None
    order: list[str] | None = None
    rows: dict[str, HistogramRow] = {}
    no_sstables = False
    warnings: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == NO_SSTABLES:
            no_sstables = True
        elif _WARNING.match(line):
            warnings.append(line)
        elif m := _TITLE.match(line):
            if title is not None:
                raise ParseError(COMMAND, "histograms of several tables (give keyspace and table)", text)
            title = m
        elif line.startswith("Percentile") and title is not None and order is None:
            names = re.split(r"\s{2,}", line)
            if names[0] != "Percentile" or sorted(names[1:]) != sorted(_COLUMNS):
                raise ParseError(COMMAND, f"unknown header {line!r}", text)
            order = [_COLUMNS[n] for n in names[1:]]
        elif order is not None and not rows and set(line.split()) <= _UNITS:
            continue
        elif order is not None and (r := _ROW.match(line)) and r.group("label") not in rows:
            v = dict(zip(order, (_num(x) for x in r.group(2).split()), strict=True))
            rows[r.group("label")] = HistogramRow(
                label=r.group("label"),
                read_latency_micros=v["read_latency_micros"],
                write_latency_micros=v["write_latency_micros"],
                sstables=v["sstables"],
                partition_size_bytes=v["partition_size_bytes"],
                cell_count=v["cell_count"],
            )
        else:
            raise ParseError(COMMAND, f"unexpected line {line!r}", text)
    if title is None or order is None:
        raise ParseError(COMMAND, "no histogram table found", text)
    missing = [label for label in LABELS if label not in rows]
    if missing:
        raise ParseError(COMMAND, f"rows missing: {', '.join(missing)}", text)
    return TableHistograms(
        keyspace=title.group("keyspace"),
        table=title.group("table"),
        rows=rows,
        no_sstables=no_sstables,
        warnings=tuple(warnings),
    )
