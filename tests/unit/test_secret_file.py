"""The lab's generated secrets: 0600 from birth, one per file, never written through a symlink."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cassandra_recovery.lab.secret_file import write_new_secret

pytestmark = pytest.mark.area("lab")


def test_a_new_secret_is_written_as_rendered_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    base = tmp_path / "lab"
    path = base / "postgres.password"

    secret = write_new_secret(base, path, lambda s: f"user {s}\n")

    assert secret and path.read_text() == f"user {secret}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(base.stat().st_mode) == 0o755
    assert [p.name for p in base.iterdir()] == ["postgres.password"]  # no temporary file left behind


def test_a_symlink_at_the_secrets_place_is_replaced_and_its_target_never_written(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    path = tmp_path / "jmx.password"
    path.symlink_to(target)

    secret = write_new_secret(tmp_path, path, lambda s: s + "\n")

    assert target.read_text() == "untouched\n"
    assert not path.is_symlink() and path.read_text() == f"{secret}\n"


def test_each_call_makes_a_different_secret(tmp_path: Path) -> None:
    a = write_new_secret(tmp_path, tmp_path / "a", lambda s: s)
    b = write_new_secret(tmp_path, tmp_path / "b", lambda s: s)
    assert a and b and a != b
