"""`lab down --postgres` stops the PostgreSQL cluster on the configured port and nothing else (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cassandra_recovery.commands import teardown
from cassandra_recovery.lab import leftovers, postgres, prefect_server
from cassandra_recovery.settings import Settings

pytestmark = pytest.mark.area("lab")


def test_down_with_postgres_stops_the_cluster_on_the_configured_port_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[int] = []
    monkeypatch.setattr(leftovers, "scan", lambda base_dir, user_prefix=None: [])
    monkeypatch.setattr(prefect_server, "stop_prefect_server", lambda settings, progress=None: None)
    monkeypatch.setattr(postgres, "stop_postgres", lambda progress=None, *, port: stopped.append(port))
    settings = Settings(lab={"base_dir": tmp_path}, postgres={"port": 5441})  # type: ignore[arg-type]

    rc = teardown.down(settings, None, keep_data=False, prefect=False, postgres=True, say=lambda m: None)

    assert rc == 0
    assert stopped == [5441]  # never Debian's 5432, which this machine's other users may run


def test_stopping_postgres_names_its_port() -> None:
    """No default port to fall back on: a caller that forgets the configured one is a type error, not a stopped
    system cluster."""
    with pytest.raises(TypeError):
        postgres.stop_postgres()  # type: ignore[call-arg]
