"""Refused alert bodies on disk: raw bytes, private files, kept once, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from cassandra_recovery.intake.rejected import DirRejectedBodies

pytestmark = pytest.mark.area("intake")


def test_bodies_are_kept_byte_for_byte_in_private_files_and_bounded(tmp_path: Path) -> None:
    store = DirRejectedBodies(tmp_path / "rejected", max_files=2)
    body = b'{"summary": "bad \\u0000 value", "raw": "\xff"}'
    name = store.keep("alertmanager", body, "DataError")
    assert name is not None
    kept = tmp_path / "rejected" / f"{name}.body"
    assert kept.read_bytes() == body and kept.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "rejected" / f"{name}.reason.txt").read_text() == "DataError"
    assert store.keep("alertmanager", body, "DataError") == name  # the same body again: kept once
    assert store.keep("grafana", b"second", "x") is not None
    assert store.keep("grafana", b"third", "x") is None  # full: a flood of bad alerts cannot fill the disk
    assert len(list((tmp_path / "rejected").glob("*.body"))) == 2
