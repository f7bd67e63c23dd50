"""One CLI pattern: the verb table is the table of contents, `--json` is defined once on every verb, and with it
errors are JSON on stdout (code, message, exit status) besides the one line on stderr."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cassandra_recovery.cli import RAW_OUTPUT, RUNS, VERBS, _leaves, build_parser, main

pytestmark = pytest.mark.area("lab")


def test_every_top_level_command_has_a_row_in_the_verb_table() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == set(RUNS)
    assert sum(len(v.commands) for v in VERBS) == len(RUNS), "a command in two rows"


def test_json_is_one_shared_option_on_every_verb() -> None:
    leaves = list(_leaves(build_parser()))
    assert len(leaves) > 30
    for leaf in leaves:
        action = leaf._option_string_actions["--json"]
        assert action.help is not None and "machine output" in action.help, leaf.prog


def test_a_raw_output_verb_takes_no_options_after_its_node() -> None:
    assert RAW_OUTPUT == {"nodetool"}
    assert all(not leaf.prog.endswith(" nodetool") for leaf in _leaves(build_parser()))


@pytest.mark.parametrize(
    ("args", "code", "status", "message"),
    [
        (["verify", "--keyspace", "bad key", "--table", "t"], "bad_input", 2, "invalid CQL identifier 'bad key'"),
        (["lab", "status", "--bogus"], "bad_input", 2, "unrecognized arguments: --bogus"),
        (["lab", "up", "--nodes", "0"], "bad_input", 2, "--nodes must be between 1 and 9"),
    ],
)
def test_with_json_an_error_is_json_on_stdout_and_one_line_on_stderr(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: str,
    status: int,
    message: str,
) -> None:
    monkeypatch.setenv("CASSANDRA_RECOVERY_LAB__BASE_DIR", str(tmp_path / "lab"))
    try:
        got = main([*args, "--json"])
    except SystemExit as e:  # argparse's own refusals exit from the parser
        got = int(str(e.code))
    out, err = capsys.readouterr()
    doc = json.loads(out.strip().splitlines()[-1])
    assert got == status == doc["exit_status"]
    assert doc["error"]["code"] == code and message in doc["error"]["message"]
    assert f"error: {message}" in err
    capsys.readouterr()
    try:
        main(args)
    except SystemExit:
        pass
    out, err = capsys.readouterr()
    assert out == "" and message in err, "without --json, errors stay on stderr only"
