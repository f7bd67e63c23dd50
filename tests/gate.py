"""The gate's pytest plugin (`-p tests.gate`): with --fail-on-skip a tier that skipped anything fails.

A contract or cluster test that skips proves nothing; an all-skipped tier would otherwise exit 0."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fail-on-skip", action="store_true", help="a skipped test fails the run (the CI gate)")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--fail-on-skip"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if skipped and reporter is not None:
        reporter.write_line(f"gate: {len(skipped)} test(s) skipped; in this tier a skip fails the run", red=True)
        for rep in skipped[:20]:
            reporter.write_line(
                f"  skipped: {rep.nodeid}: {rep.longrepr[2] if isinstance(rep.longrepr, tuple) else ''}"
            )
