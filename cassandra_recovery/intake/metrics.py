"""The receiver's own Prometheus metrics, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REJECT_REASONS = (
    "auth", "rate_limited", "timeout", "too_large", "malformed", "invalid", "refused_by_store", "unavailable",
)  # fmt: skip


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.accepted = Counter(
            "cr_receiver_alerts_accepted", "new alerts (stored or delivered)", ["source"], registry=r
        )
        self.duplicates = Counter(
            "cr_receiver_alerts_duplicate", "alerts received before (re-sends, replays)", ["source"], registry=r
        )
        self.rejected = Counter("cr_receiver_requests_rejected", "requests answered 4xx/5xx", ["reason"], registry=r)
        self.spooled = Counter(
            "cr_receiver_alerts_spooled", "alerts left pending in the inbox after a failed delivery", registry=r
        )
        self.delivered = Counter(
            "cr_receiver_alerts_delivered", "alerts delivered (inline, deliverer, direct)", ["path"], registry=r
        )
        self.pending = Gauge("cr_receiver_spooled_pending", "alerts pending delivery in the inbox", registry=r)
        self.store_up = Gauge("cr_receiver_store_up", "1 when the inbox answered last time", registry=r)
        self.store_busy = Counter(
            "cr_receiver_store_busy", "inbox calls that found every pooled connection in use", registry=r
        )
        for reason in REJECT_REASONS:  # exported at 0 from the start, so rate() works from the first error
            self.rejected.labels(reason)
