"""Parsing of Cassandra-style durations such as 20s, 500ms, 3h."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """Milliseconds for '<integer><ms|s|m|h|d>'; ValueError names the accepted form."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r}: expected an integer and a unit ms, s, m, h or d (e.g. 20s, 3h)")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]
