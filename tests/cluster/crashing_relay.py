"""A relay process that SIGKILLs itself right after its Cassandra write, before marking the entry delivered.

Run by test_degraded.py as a subprocess; settings (domain table names, lease) come from the environment.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from cassandra_recovery.degraded.relay import Relay
from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import service_parts
from tests.migrated import migrated


class DieAfterWrite:
    def __init__(self, real: Any):
        self.real = real

    def put(self, payload: dict[str, Any], version: int) -> None:
        self.real.put(payload, version)
        os.kill(os.getpid(), signal.SIGKILL)

    def delete(self, order_id: str, version: int) -> None:
        self.real.delete(order_id, version)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    parts = service_parts(migrated(Settings()))
    Relay(parts.pg.outbox, DieAfterWrite(parts.cache), relay_id="crashing-relay").run_once()
    raise SystemExit("not reached: the relay should have been killed after its write")
