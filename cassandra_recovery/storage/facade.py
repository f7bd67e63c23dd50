"""One Storage per process: the pool and every PostgreSQL store over it, composed here and nowhere else."""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.controls.killswitch import KillSwitch
from cassandra_recovery.controls.silences import Silences
from cassandra_recovery.degraded.policy import PolicyStore
from cassandra_recovery.detection.region_store import RegionViews
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.incident.side_effects import SideEffectLog
from cassandra_recovery.incident.store import IncidentStore, Lease
from cassandra_recovery.intake.spool import PgSpool
from cassandra_recovery.mitigation.pauses import RepairPauses
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
from cassandra_recovery.scheduled.schedule_log import ScheduleLog
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.migrate import require_current
from cassandra_recovery.storage.names import CORE, DOMAIN, SchemaNames


@dataclass
class Storage:
    """Per-entity stores sharing one pool (in the manner of Reaper's IStorageDao). Orders and the outbox are
    per cluster: wiring.pg_parts builds them over `pool`."""

    settings: Settings
    pool: ConnectionPool
    names: SchemaNames
    incidents: IncidentStore = field(init=False)  # incidents, their timeline, leases and reports
    inbox: PgSpool = field(init=False)
    silences: Silences = field(init=False)
    kill_switch: KillSwitch = field(init=False)
    pauses: RepairPauses = field(init=False)
    checkpoints: RepairCheckpoints = field(init=False)
    schedule_log: ScheduleLog = field(init=False)
    region_views: RegionViews = field(init=False)
    side_effects: SideEffectLog = field(init=False)  # the fenced log of every run's actions on the cluster
    _policy: PolicyStore | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        p = self.pool
        self.incidents = IncidentStore(p, self.names.incident_prefix)
        self.inbox = PgSpool(p, self.names.inbox)
        self.silences, self.kill_switch, self.pauses = Silences(p), KillSwitch(p), RepairPauses(p)
        self.checkpoints, self.schedule_log, self.region_views = RepairCheckpoints(p), ScheduleLog(p), RegionViews(p)
        self.side_effects = SideEffectLog(p)

    def fence(self, lease: Lease | None, holder: str) -> Fence:
        """The run's fence: its incident lease, or (a run that holds none, such as a scheduled repair) `holder`."""
        return Fence.unfenced(holder) if lease is None else self.incidents.fence(lease)

    @property
    def policy(self) -> PolicyStore:
        """The degradation policy, a table of the domain track: its version is checked on first use (processes
        that never touch the example domain do not need its tables)."""
        if self._policy is None:
            require_current(self.settings.postgres_conninfo(), self.names, tracks=(DOMAIN,))
            self._policy = PolicyStore(self.pool, self.settings.domain)
        return self._policy

    def close(self) -> None:
        self.pool.close()


def open_storage(settings: Settings, max_size: int = 8, check: bool = True) -> Storage:
    """A new Storage with its own pool; with `check`, SchemaNotCurrent unless `db upgrade` has run (the core
    track; the domain's is checked when `policy` is first used)."""
    names = SchemaNames.from_settings(settings)
    if check:
        require_current(settings.postgres_conninfo(), names, tracks=(CORE,))
    return Storage(settings, make_pool(settings, max_size=max_size), names)


_lock = threading.Lock()
_by_process: dict[tuple[int, str, SchemaNames], Storage] = {}


def process_storage(settings: Settings | None = None) -> Storage:
    """The process's Storage, opened (and the schema version checked) on first use. Keyed by pid, so a forked
    child opens its own pool instead of sharing the parent's sockets; tasks call this instead of opening a pool."""
    s = settings or Settings()
    key = (os.getpid(), s.postgres_conninfo(), SchemaNames.from_settings(s))
    with _lock:
        found = _by_process.get(key)
        if found is None:
            if not _by_process:
                atexit.register(close_process_storage)  # pools closed in order, not by the garbage collector
            found = _by_process[key] = open_storage(s)
        return found


def close_process_storage() -> None:
    """Close every pool this process opened through process_storage (tests, orderly shutdown)."""
    with _lock:
        for key, storage in list(_by_process.items()):
            if key[0] == os.getpid():
                storage.close()
            del _by_process[key]
