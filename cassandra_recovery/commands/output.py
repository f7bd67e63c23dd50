"""What every verb prints, one way: with `--json` one JSON document on stdout (machine output); without it a table
for people (Rich); progress on stderr, as a bar for counted work on a terminal and as lines otherwise (CI logs,
pipes), so stdout stays clean either way."""

from __future__ import annotations

import atexit
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


def emit(doc: Any, as_json: bool, human: Callable[[], str] | None = None) -> None:
    """`doc` on stdout: JSON with `--json`; else `human()` when the verb has its own words, else a table."""
    if as_json:
        print(json.dumps(doc, default=str))
    elif human is not None:
        print(human())
    else:
        Console(soft_wrap=True).print(table_of(doc))


def table_of(doc: Any) -> Any:
    """A list of records as rows and columns; a record as field/value rows (nested values as compact JSON)."""
    if isinstance(doc, list) and doc and all(isinstance(r, Mapping) for r in doc):
        columns = list(dict.fromkeys(k for r in doc for k in r))
        t = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
        for r in doc:
            t.add_row(*(_cell(r.get(c)) for c in columns))
        return t
    if isinstance(doc, Mapping):
        t = Table("field", "value", box=None, show_header=False)
        for k, v in doc.items():
            t.add_row(str(k), _cell(v))
        return t
    return _cell(doc)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str | int | float | bool):
        return str(v).lower() if isinstance(v, bool) else str(v)
    return json.dumps(v, default=str)


class Reporter:
    """A verb's progress on stderr. Called with a line, it prints `[prefix] line`; `step(what, done, total)` draws a
    bar per `what` on a terminal (a line per step elsewhere). The library reports through `counted` (progress.py),
    so the same code logs plain lines inside a flow run."""

    def __init__(self, prefix: str, console: Console | None = None):
        self.prefix = prefix
        self.console = console or Console(stderr=True)
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, msg: str) -> None:
        if self._bars is not None:
            self._bars.console.print(f"[{self.prefix}] {msg}", markup=False, highlight=False)
        else:
            print(f"[{self.prefix}] {msg}", file=sys.stderr, flush=True)

    def step(self, what: str, done: int, total: int) -> None:
        if not self.console.is_terminal:
            self(f"{what}: {done}/{total}")
            return
        if self._bars is None:
            self._bars = Progress(
                TextColumn(f"[{self.prefix}] {{task.description}}", markup=False), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=False,
            )  # fmt: skip
            self._bars.start()
            atexit.register(self.close)  # an error mid-way must not leave the terminal's cursor hidden
        if what not in self._tasks:
            self._tasks[what] = self._bars.add_task(what, total=total)
        self._bars.update(self._tasks[what], completed=done, total=total)
        if all(t.finished for t in self._bars.tasks):
            self.close()

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars, self._tasks = None, {}
