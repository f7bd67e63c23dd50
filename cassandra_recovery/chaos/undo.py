"""How each fault is undone, by name: what the injector runs when the fault ends, and what its guardian runs
when the injector died first. Every undo is idempotent (it may run twice: once by each) and takes only plain
JSON arguments, so a separate process can run it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from cassandra_recovery.errors import LabError
from cassandra_recovery.settings import Settings

Undo = Callable[[dict[str, Any]], None]


def _lab() -> Any:
    from cassandra_recovery.lab.cluster import Lab

    return Lab(Settings().lab)


def thaw_node(a: dict[str, Any]) -> None:
    _lab().thaw(a["node"], wait=False)


def heal_node(a: dict[str, Any]) -> None:
    _lab().heal(a["node"], wait=False)


def start_node(a: dict[str, Any]) -> None:
    lab = _lab()
    if lab.process(lab.node(a["node"])) is None:
        lab.start(a["node"])


def unsplit(a: dict[str, Any]) -> None:
    _lab().unsplit()


def start_postgres(a: dict[str, Any]) -> None:
    from cassandra_recovery.lab.postgres import ensure_postgres

    ensure_postgres(Settings())


def start_prefect(a: dict[str, Any]) -> None:
    from cassandra_recovery.lab.prefect_server import ensure_prefect_server

    ensure_prefect_server(Settings())


def continue_processes(a: dict[str, Any]) -> None:
    for pid in a["pids"]:
        try:
            os.kill(int(pid), signal.SIGCONT)
        except ProcessLookupError:
            pass


def delete_nft_table(a: dict[str, Any]) -> None:
    from cassandra_recovery.lab import split

    table = str(a["table"])
    if not table.startswith(CHAOS_TABLE_PREFIX):
        raise LabError(f"refusing to delete nftables table {table!r}: not a chaos table")
    split.remove(table)


CHAOS_TABLE_PREFIX = "cassandra_recovery_chaos_"
UNDO: dict[str, Undo] = {
    f.__name__: f
    for f in (thaw_node, heal_node, start_node, unsplit, start_postgres, start_prefect, continue_processes,
              delete_nft_table)
}  # fmt: skip


def run_undo(kind: str, args: dict[str, Any]) -> None:
    if kind not in UNDO:
        raise ValueError(f"unknown undo {kind!r}; known: {', '.join(sorted(UNDO))}")
    UNDO[kind](args)
