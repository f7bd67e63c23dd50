"""Reads the repairs each node takes part in now, whoever started them: its system_views repair tables (CQL, cheap)
and, when asked, `nodetool repair_admin list` and `nodetool compactionstats` (a JVM per call: seconds of CPU)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from cassandra_recovery.errors import CommandError, ParseError, RecoveryError
from cassandra_recovery.logic.foreign_repairs import (
    VIEWS,
    NodeRepairs,
    RunningRepair,
    from_compactionstats,
    from_repair_admin,
    from_views,
)
from cassandra_recovery.parsers.compactionstats import parse_compactionstats
from cassandra_recovery.parsers.repair_admin import parse_repair_admin_list

log = logging.getLogger(__name__)


class ViewReader(Protocol):
    def repairs(self, address: str) -> list[dict[str, Any]]: ...

    def execute_on(self, address: str, query: str) -> list[dict[str, Any]]: ...


class NodetoolRunner(Protocol):
    def output(self, node: str, *args: str, timeout_s: float | None = None) -> str: ...


# Constant statements, one per view (never text from input).
_QUERIES = {view: f"SELECT * FROM system_views.{view}" for view in VIEWS if view != "repairs"}  # noqa: S608


class RepairActivity:
    def __init__(self, cql: ViewReader, nodetool: NodetoolRunner | None = None, nodetool_timeout_s: float = 60.0):
        """nodetool: also ask `repair_admin list` and `compactionstats` (the assessment does, once per node); without
        it only the views are read, which in 5.0 name every repair a node coordinates, joins or validates for."""
        self.cql, self.nodetool, self.timeout_s = cql, nodetool, nodetool_timeout_s

    def observe(self, nodes: Sequence[str]) -> list[NodeRepairs]:
        """One NodeRepairs per node; a node that cannot be read carries the error instead of raising."""
        return [self.observe_node(node) for node in nodes]

    def observe_node(self, node: str) -> NodeRepairs:
        running: list[RunningRepair] = []
        errors: list[str] = []
        rows: dict[str, list[dict[str, Any]]] = {}
        for view in VIEWS:
            try:
                rows[view] = self.cql.repairs(node) if view == "repairs" else self.cql.execute_on(node, _QUERIES[view])
            except Exception as e:  # unreachable, or a release without this view: say so, read the others
                errors.append(f"system_views.{view}: {type(e).__name__}: {e}"[:300])
        running += from_views(node, rows)
        if self.nodetool is not None:
            for args in (("repair_admin", "list"), ("compactionstats",)):
                try:
                    text = self.nodetool.output(node, *args, timeout_s=self.timeout_s)
                    if args[0] == "repair_admin":
                        running += from_repair_admin(node, parse_repair_admin_list(text))
                    else:
                        running += from_compactionstats(node, parse_compactionstats(text))
                except (CommandError, ParseError, RecoveryError) as e:
                    errors.append(f"nodetool {' '.join(args)}: {str(e).splitlines()[0][:300]}")
        if errors:
            log.warning("repairs on %s only partly observed: %s", node, "; ".join(errors))
        return NodeRepairs(node, tuple(running), "; ".join(errors) or None)
