"""A lease that cannot silently lapse: a heartbeat thread renews the incident's lease in PostgreSQL while its
holder works, and fences the holder (`lost`) when the lease was taken over or could lapse before it renews
again. The holder checks `raise_if_lost()` between its steps; its fenced writes are refused meanwhile anyway."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cassandra_recovery.incident.store import Lease, LeaseLost
from cassandra_recovery.logic.lease_heartbeat import check_heartbeat, must_fence

log = logging.getLogger(__name__)


class LeaseLapsed(LeaseLost):
    """The holder could not renew its lease in time (PostgreSQL unreachable): it stops before another run may
    take the incident over."""

    def __init__(self, lease: Lease, why: str) -> None:
        self.incident_id, self.holder, self.token = lease.incident_id, lease.holder, lease.token
        self.current_holder, self.current_token = None, lease.token
        super(LeaseLost, self).__init__(f"LeaseLapsed on incident {lease.incident_id}: {lease.holder} ({why})")


class LeaseKeeper:
    """Renews `lease` every `every_s` for `ttl_s` on a daemon thread (`renew(lease, ttl_s)`); stopped before a
    run suspends (the approval's longer lease must not be shortened) and when the run ends."""

    def __init__(
        self,
        lease: Lease,
        renew: Callable[[Lease, float], Lease],
        every_s: float,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_heartbeat(every_s, ttl_s)
        self.lease, self._renew, self.every_s, self.ttl_s, self._clock = lease, renew, every_s, ttl_s, clock
        self.lost: LeaseLost | None = None
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LeaseKeeper:
        """Renews at once (a resumed run shortens a long approval lease back to the heartbeat's), then beats."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        last_ok = self.beat(self._clock())  # the caller took or renewed the lease just now
        self._thread = threading.Thread(target=self._run, args=(last_ok,), name="lease-keeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.every_s + 30)
        self._thread = None

    def raise_if_lost(self) -> None:
        if self.lost is not None:
            raise self.lost

    def beat(self, last_ok: float) -> float:
        """One renewal; the time of the last successful one. Sets `lost` when the holder must stop."""
        if self.lost is not None:
            return last_ok
        try:
            self.lease = self._renew(self.lease, self.ttl_s)
        except LeaseLost as e:
            self.lost = e
            log.error("incident lease lost, this run stops acting: %s", e)
            return last_ok
        except Exception as e:  # noqa: BLE001 - any failure to renew counts against the TTL, never kills the beat
            now = self._clock()
            if must_fence(last_ok, now, self.every_s, self.ttl_s):
                why = f"not renewed for {now - last_ok:.0f}s of a {self.ttl_s:.0f}s lease: {type(e).__name__}: {e}"
                self.lost = LeaseLapsed(self.lease, why[:500])
                log.error("incident lease could lapse, this run stops acting: %s", self.lost)
            else:
                log.warning("incident lease not renewed (retrying in %.0fs): %s: %s", self.every_s, type(e).__name__, e)
            return last_ok
        self.beats += 1
        return self._clock()

    def _run(self, last_ok: float) -> None:
        while not self._stop.wait(self.every_s) and self.lost is None:
            last_ok = self.beat(last_ok)
