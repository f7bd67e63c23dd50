"""Contract tests of the PostgreSQL bootstrap against this machine's real cluster on the configured port (5432 by
default; bin/test uses a throwaway cluster on a port of its own)."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.lab.postgres import ensure_postgres, lab_password, parse_lsclusters, stop_postgres
from cassandra_recovery.settings import LabConfig, PostgresConfig, Settings

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning runs psql through runuser, which needs root"),
    pytest.mark.area("lab"),
]

# A role and database of their own, so the tests never reset the real lab role's password.
NAME = "cr_contract_bootstrap"
OWNER = f"{NAME}_owner"  # its migration role, which owns the database
PORT = Settings().postgres.port


def _settings(base_dir: Path, password: str | None = None) -> Settings:
    secret = SecretStr(password) if password else None
    pg = PostgresConfig(user=NAME, dbname=NAME, port=PORT, password=secret, migration_user=OWNER)
    return Settings(postgres=pg, lab=LabConfig(base_dir=base_dir))


def _psql_as_postgres(sql: str) -> None:
    argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
    subprocess.run(
        [*argv, "-p", str(PORT), "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, list[str]]]:
    settings = _settings(tmp_path_factory.mktemp("pg") / "lab")  # missing dir: lab_password creates it
    messages: list[str] = []
    ensure_postgres(settings, progress=messages.append)
    ensure_postgres(settings, progress=messages.append)  # idempotent: second run must not fail
    yield settings, messages
    # PostgreSQL itself stays up for the other tests; only this module's role and database go.
    _psql_as_postgres(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
    _psql_as_postgres(f"DROP ROLE IF EXISTS {NAME}")
    _psql_as_postgres(f"DROP ROLE IF EXISTS {OWNER}")


def test_ensure_twice_reports_cluster_online(provisioned: tuple[Settings, list[str]]) -> None:
    _, messages = provisioned
    online = [m for m in messages if m.startswith("postgres: cluster ") and m.endswith(f"on port {PORT} online")]
    assert len(online) == 2, messages
    assert messages[-1] == f"postgres: role {NAME} (runtime), role {OWNER} (owns database {NAME}) ready"


def test_the_migration_role_owns_the_database_and_the_runtime_role_cannot_create_tables(
    provisioned: tuple[Settings, list[str]],
) -> None:
    settings, _ = provisioned
    with psycopg.connect(settings.postgres_conninfo(), connect_timeout=5, autocommit=True) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (NAME, NAME)
        conn.execute("CREATE TEMP TABLE probe (id int PRIMARY KEY, v text)")  # temporary tables stay allowed
        conn.execute("INSERT INTO probe VALUES (1, 'x')")
        assert conn.execute("SELECT v FROM probe").fetchone() == ("x",)
        conn.execute("DROP TABLE probe")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE owned_probe (id int)")  # public belongs to the database's owner
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (NAME,))
        assert owner.fetchone() == (OWNER,)
    with psycopg.connect(settings.migration_conninfo(), connect_timeout=5, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (OWNER,)
        conn.execute("CREATE TABLE owned_probe (id int)")
        conn.execute("DROP TABLE owned_probe")


def test_password_file_private_reused_and_never_reported(provisioned: tuple[Settings, list[str]]) -> None:
    settings, messages = provisioned
    path = settings.lab.base_dir / "postgres.password"
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == 0
    assert stat.S_IMODE(settings.lab.base_dir.stat().st_mode) == 0o755
    password = lab_password(settings.lab)
    assert password == path.read_text().strip() and len(password) >= 32
    assert lab_password(settings.lab) == password
    owner_path = settings.lab.base_dir / f"postgres.{OWNER}.password"
    assert stat.S_IMODE(owner_path.stat().st_mode) == 0o600
    owner_password = lab_password(settings.lab, OWNER)
    assert owner_password == owner_path.read_text().strip() and owner_password != password
    assert messages and not any(p in m for m in messages for p in (password, owner_password))


def test_configured_non_ascii_password_matches_libpq_saslprep(
    provisioned: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    # NBSP maps to a space and the "ﬁ" ligature to "fi" under SASLprep; libpq does the same when it connects.
    settings = _settings(tmp_path, password="pässwört\u00a0\ufb01 'x' \\ $1")
    messages: list[str] = []
    ensure_postgres(settings, progress=messages.append)
    assert not (tmp_path / "postgres.password").exists()
    assert not any("pässwört" in m for m in messages)
    ensure_postgres(provisioned[0])  # back to the generated password for the other tests


@pytest.mark.parametrize("field", ["user", "dbname"])
@pytest.mark.parametrize("bad", ["Upper", "x;drop role postgres", "1starts_with_digit", "a" * 64, ""])
def test_bad_identifier_raises_config_error(tmp_path: Path, field: str, bad: str) -> None:
    pg = PostgresConfig(**{field: bad, "port": PORT})
    with pytest.raises(ConfigError, match=field):
        ensure_postgres(Settings(postgres=pg, lab=LabConfig(base_dir=tmp_path)))
    assert not (tmp_path / "postgres.password").exists()  # rejected before anything happened


def test_parser_reads_live_pg_lsclusters(provisioned: tuple[Settings, list[str]]) -> None:
    out = subprocess.run(
        ["pg_lsclusters", "--no-header"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "LANG": "C"},
        check=True,
    ).stdout
    on_port = [c for c in parse_lsclusters(out) if c.port == PORT]
    assert len(on_port) == 1 and on_port[0].online and on_port[0].owner == "postgres"


def test_stop_postgres_without_cluster_on_port_is_noop() -> None:
    messages: list[str] = []
    stop_postgres(progress=messages.append, port=5999)
    assert messages == ["postgres: no online cluster on port 5999"]
