"""What verbs print: JSON with --json, a table without; counted progress as a bar on a terminal, lines elsewhere."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from cassandra_recovery.commands.output import Reporter, emit
from cassandra_recovery.progress import counted

pytestmark = pytest.mark.area("lab")

DOC = {"cluster": "prod", "drained": True, "queued": 0, "run": {"delivered": 12}, "missing": None}


def test_with_json_one_compact_document_and_without_a_table_of_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    emit(DOC, as_json=True)
    assert json.loads(capsys.readouterr().out) == DOC
    emit(DOC, as_json=False)
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split(None, 1)[1].strip() for line in out.splitlines() if line.strip()}
    assert rows == {"cluster": "prod", "drained": "true", "queued": "0", "run": '{"delivered": 12}', "missing": "-"}


def test_a_list_of_records_is_a_table_with_a_column_per_field(capsys: pytest.CaptureFixture[str]) -> None:
    emit([{"track": "core", "current": "0003"}, {"track": "domain", "head": "0002"}], as_json=False)
    header, *rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip("─ \n")]
    assert header == ["track", "current", "head"]
    assert rows == [["core", "0003", "-"], ["domain", "-", "0002"]]


def test_counted_work_is_a_line_per_step_off_a_terminal_and_a_bar_on_one(capsys: pytest.CaptureFixture[str]) -> None:
    plain = Reporter("verify", console=Console(file=io.StringIO(), force_terminal=False))
    counted(plain, "verify ks.t: chunks read", 3, 8)
    assert capsys.readouterr().err == "[verify] verify ks.t: chunks read: 3/8\n"
    screen = io.StringIO()
    bars = Reporter("verify", console=Console(file=screen, force_terminal=True, width=100))
    counted(bars, "verify ks.t: chunks read", 8, 8)  # the last step ends the bar
    assert "8/8" in screen.getvalue() and capsys.readouterr().err == ""


def test_a_caller_without_bars_keeps_its_own_line_or_none() -> None:
    said: list[str] = []
    counted(said.append, "repair r1: segments", 2, 5, line="")  # the segment's own line already said it
    counted(said.append, "lab up: nodes", 1, 3, line="node1 ready")
    assert said == ["node1 ready"]
