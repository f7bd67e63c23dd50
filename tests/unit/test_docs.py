"""The README and docs/ point at things that exist: every relative link, and every project path they name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.area("lab")
ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PATH = re.compile(r"`((?:cassandra_recovery|flows|tasks|deployments|tests|scripts|benchmarks|bin)/[\w/.-]+)`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_named_paths_exist(page: Path) -> None:
    text = page.read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (page.parent / target).exists(), f"{page.name}: link to {target}, which does not exist"
    for named in PATH.findall(text):
        assert (ROOT / named.rstrip(".")).exists(), f"{page.name}: names {named}, which does not exist"


def test_the_readme_holds_the_two_set_up_commands_and_ci_runs_the_test_one() -> None:
    setup = re.search(r"## Set-up on a fresh machine\n\n```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert setup is not None
    commands = [line.split("#")[0].strip() for line in setup.group(1).splitlines() if line.strip()]
    assert commands == ["bin/demo", "bin/test"]
    assert "bin/test" in (ROOT / ".ci" / "run").read_text()
