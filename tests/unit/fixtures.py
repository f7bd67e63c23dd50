"""Load captured nodetool fixtures: split the header line, stdout and the optional stderr part."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "nodetool"
STDERR_MARKER = "# --- stderr ---\n"
_HEADER = re.compile(
    r"^# (?P<version>Cassandra \S+); scenario: (?P<scenario>.+); command: (?P<command>.+); "
    r"exit: (?P<exit>\d+)$"
)


@dataclass(frozen=True)
class Fixture:
    header: str
    stdout: str
    stderr: str
    exit_code: int

    @property
    def scenario(self) -> str:
        m = _HEADER.match(self.header)
        assert m is not None, self.header
        return m.group("scenario")

    @property
    def command(self) -> str:
        m = _HEADER.match(self.header)
        assert m is not None, self.header
        return m.group("command")


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURE_DIR.glob("*.txt"))


def load_fixture(name: str) -> Fixture:
    path = FIXTURE_DIR / (name if name.endswith(".txt") else f"{name}.txt")
    header, _, body = path.read_text().partition("\n")
    # capture_fixtures.py appends the marker right after stdout, only when stderr was non-empty.
    stdout, _, stderr = body.partition(STDERR_MARKER)
    m = _HEADER.match(header)
    if m is None:
        raise ValueError(f"{path.name}: unexpected header {header!r}")
    return Fixture(header=header, stdout=stdout, stderr=stderr, exit_code=int(m.group("exit")))
