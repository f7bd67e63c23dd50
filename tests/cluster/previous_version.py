"""The version before versioned migrations (its results pickled, its tables made at the call sites), served
from its own tree: an upgrade is tested with a run that version left suspended."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEFORE_MIGRATIONS = "09d098ab6e8ff497bc91cec6bdc3f0f43ae91640"  # main just before versioned migrations


def previous_version(into: Path) -> Path:
    """The pinned commit's tree (no .git), by `git archive`."""
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE_MIGRATIONS],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(into, filter="data")
    return into


class Served:
    """`cassandra-recovery serve` of one version: from its own tree, which comes first on its path."""

    def __init__(self, tree: Path, env: dict[str, str], log: Path) -> None:
        self.log = open(log, "a")  # noqa: SIM115 - closed in stop()
        env = {**env, "PYTHONPATH": str(tree)}
        argv = [sys.executable, "-m", "cassandra_recovery.cli", "serve"]
        self.proc = subprocess.Popen(argv, env=env, cwd=tree, stdout=self.log, stderr=self.log)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
