"""Pure tests of the `pg_lsclusters --no-header` parser on captured output."""

from __future__ import annotations

from pathlib import Path

import pytest

from cassandra_recovery.errors import ParseError
from cassandra_recovery.lab.postgres import PgCluster, parse_lsclusters

pytestmark = pytest.mark.area("lab")

FIXTURE = Path(__file__).parent.parent / "fixtures" / "postgres" / "pg_lsclusters.txt"


def _captured() -> str:
    lines = FIXTURE.read_text().splitlines(keepends=True)
    assert lines[0].startswith("# PostgreSQL 15 (Debian), scenario:")
    return "".join(lines[1:])


def test_parses_captured_output() -> None:
    assert parse_lsclusters(_captured()) == [
        PgCluster(
            "15",
            "main",
            5432,
            "down",
            "postgres",
            "/var/lib/postgresql/15/main",
            "/var/log/postgresql/postgresql-15-main.log",
        ),
    ]


def test_online_with_flags_header_and_several_versions() -> None:
    text = (
        "Ver Cluster Port Status          Owner    Data directory              Log file\n"
        "13  main    5433 down,binaries_missing postgres /var/lib/postgresql/13/main syslog\n"
        "15  main    5432 online,recovery postgres /var/lib/postgresql/15/main log/postgresql-%Y-%m-%d.log\n"
    )
    old, new = parse_lsclusters(text)
    assert (old.version, old.port, old.online, old.log_file) == ("13", 5433, False, "syslog")
    assert (new.version, new.port, new.online, new.status) == ("15", 5432, True, "online,recovery")


def test_no_clusters_is_empty() -> None:
    assert parse_lsclusters("") == []
    assert parse_lsclusters("\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "15 main <unknown> down postgres /var/lib/postgresql/15/main /var/log/x.log\n",  # no port
        "15 main 5432 starting postgres /var/lib/postgresql/15/main /var/log/x.log\n",  # unknown status
        "15 main 5432 down\n",  # columns missing
        '[{"version": "15", "cluster": "main"}]\n',  # --json output
    ],
)
def test_unknown_layout_raises_parse_error(text: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_lsclusters(text)
    assert exc.value.command == "pg_lsclusters --no-header"
    assert exc.value.text == text
