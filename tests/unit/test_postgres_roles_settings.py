"""Which role `db upgrade` connects as, and where its password comes from (no PostgreSQL needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import LabConfig, PostgresConfig, Settings
from cassandra_recovery.storage.migrate import runtime_role_of

pytestmark = pytest.mark.area("lab")


def _settings(tmp_path: Path, **pg: object) -> Settings:
    return Settings(postgres=PostgresConfig(**pg), lab=LabConfig(base_dir=tmp_path))  # type: ignore[arg-type]


def test_by_default_a_migration_role_of_its_own_owns_the_schema(tmp_path: Path) -> None:
    s = _settings(tmp_path, password=SecretStr("runtime-pw"), migration_password=SecretStr("owner-pw"))
    assert s.postgres.split_roles and runtime_role_of(s) == "cassandra_recovery"
    owner, runtime = conninfo_to_dict(s.migration_conninfo()), conninfo_to_dict(s.postgres_conninfo())
    assert (owner["user"], owner["password"]) == ("cassandra_recovery_owner", "owner-pw")
    assert (runtime["user"], runtime["password"]) == ("cassandra_recovery", "runtime-pw")
    assert owner["dbname"] == runtime["dbname"] and owner["port"] == runtime["port"]


def test_the_migration_password_comes_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "owner.pw"
    secret.write_text("from-the-file\nignored\n")
    s = _settings(tmp_path, password=SecretStr("runtime-pw"), migration_password_file=secret)
    assert conninfo_to_dict(s.migration_conninfo())["password"] == "from-the-file"
    missing = _settings(tmp_path, migration_password_file=tmp_path / "absent")
    with pytest.raises(ConfigError, match="migration_password_file") as e:
        missing.migration_conninfo()
    assert "from-the-file" not in str(e.value)


def test_the_lab_generates_one_password_per_role(tmp_path: Path) -> None:
    s = _settings(tmp_path)  # password_source "lab"
    owner, runtime = conninfo_to_dict(s.migration_conninfo()), conninfo_to_dict(s.postgres_conninfo())
    assert owner["password"] != runtime["password"]
    assert (tmp_path / "postgres.cassandra_recovery_owner.password").read_text().strip() == owner["password"]
    assert (tmp_path / "postgres.password").read_text().strip() == runtime["password"]


@pytest.mark.parametrize("migration_user", ["", None, "cassandra_recovery"])
def test_one_role_for_both_uses_the_runtime_connection(tmp_path: Path, migration_user: str | None) -> None:
    s = _settings(tmp_path, password=SecretStr("runtime-pw"), migration_user=migration_user)
    assert not s.postgres.split_roles and runtime_role_of(s) is None
    assert s.migration_conninfo() == s.postgres_conninfo()
