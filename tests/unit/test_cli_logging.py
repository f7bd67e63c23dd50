"""During an outage the driver logs each failed connect with a traceback; the CLI shows one line instead."""

from __future__ import annotations

import logging
import sys

import pytest

from cassandra_recovery.cli import _one_line_driver_warnings
from tests import faults as F

pytestmark = pytest.mark.area("degraded")


def _record(name: str) -> logging.LogRecord:
    try:
        raise ConnectionRefusedError(111, "Tried connecting to [('127.0.0.2', 9042)]\\nsecond line")
    except ConnectionRefusedError:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        name, logging.WARNING, "x.py", 1, "[control connection] Error connecting to %s:", ("127.0.0.2:9042",), exc_info
    )


@pytest.mark.fault(F.EVERY_NODE_FROZEN)
def test_a_driver_warning_with_a_traceback_becomes_one_line() -> None:
    rec = _record("cassandra.cluster")
    assert _one_line_driver_warnings(rec) is True
    text = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(rec)
    assert "Traceback" not in text and "\n" not in text
    assert text.startswith("WARNING cassandra.cluster: [control connection] Error connecting to 127.0.0.2:9042:")
    assert "ConnectionRefusedError" in text


def test_our_own_errors_keep_their_traceback() -> None:
    rec = _record("cassandra_recovery.degraded.connect")
    _one_line_driver_warnings(rec)
    assert "Traceback" in logging.Formatter("%(message)s").format(rec)
