"""Missing Java 17 or Maven: the error says which and how to install it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cassandra_recovery.errors import ToolMissingError
from cassandra_recovery.lab import runtime

pytestmark = pytest.mark.area("lab")


def test_missing_maven_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="apt-get install -y maven"):
        runtime.find_maven()


def test_wrong_java_names_what_was_found_and_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"21.0.2\" 2024-01-16' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setattr(runtime.shutil, "which", lambda name: str(fake))
    monkeypatch.setattr(runtime, "_FALLBACK_JAVA", str(tmp_path / "absent"))
    with pytest.raises(ToolMissingError, match=r"major 21.*apt-get install -y openjdk-17-jre-headless"):
        runtime.find_java()
