"""The guardian of one injected fault: a process of its own session that undoes the fault when the injector
dies (or hangs past the fault's deadline) before undoing it itself. The injector disarms it with SIGTERM once
the fault is undone.

Run as `python -m cassandra_recovery.chaos.guardian` with the fault on stdin as JSON:
{"parent": pid, "deadline_s": seconds, "undo": kind, "args": {...}, "label": text}. The environment (the
project's settings) is inherited, never the arguments: nothing secret is in argv.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from typing import Any

from cassandra_recovery.chaos.undo import run_undo

log = logging.getLogger("cassandra_recovery.chaos.guardian")
POLL_S = 0.2


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def watch(spec: dict[str, Any], clock: Any = time.monotonic) -> str:
    """Wait for the parent to die or the deadline to pass, then undo; what happened, for the log."""
    parent, deadline = int(spec["parent"]), clock() + float(spec["deadline_s"])
    while _alive(parent) and clock() < deadline:
        time.sleep(POLL_S)
    why = "injector died" if not _alive(parent) else f"deadline of {spec['deadline_s']}s passed"
    for attempt in range(1, 4):
        try:
            run_undo(spec["undo"], spec.get("args") or {})
            return f"{spec.get('label', spec['undo'])}: undone ({why})"
        except Exception as e:  # noqa: BLE001 - keep trying: an undone fault left behind is the worst outcome
            log.error("undo %s failed (attempt %d): %s", spec["undo"], attempt, e)
            time.sleep(2.0 * attempt)
    return f"{spec.get('label', spec['undo'])}: undo FAILED after 3 attempts ({why})"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s chaos-guardian %(message)s")
    spec = json.loads(sys.stdin.read())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # disarmed: the injector undid the fault itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the injector must not disarm the guardian
    log.info("%s", watch(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
