"""The configurable table names of one install, validated, and the version table each migration track uses."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import DomainConfig, Settings

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")  # room for `_events_append_only` within 63 bytes
INBOX_TABLE_ENV = "CASSANDRA_RECOVERY_RECEIVER__TABLE"  # the receiver's ReceiverConfig.table
CORE, DOMAIN = "core", "domain"
TRACKS = (CORE, DOMAIN)


def changes_table(orders: str) -> str:
    return f"{orders}_changes"


@dataclass(frozen=True)
class SchemaNames:
    """Names of the tables whose name settings (or tests) may change; every other table has a fixed name.

    Two migration tracks, each with its own version table: `core` (incidents, inbox and the fixed-name tables)
    and `domain` (the example orders domain). Names other than the defaults get version tables of their own,
    so a second name set in the same database (the demo's orders tables, a test's session tables) is migrated
    on its own instead of being mistaken for the first one already at head.
    """

    incident_prefix: str = "incident"
    inbox: str = "alert_inbox"
    orders: str = "orders"
    outbox: str = "cache_outbox"
    policy: str = "degradation_policy"

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.incident_prefix):
            raise ConfigError(f"invalid incident table prefix {self.incident_prefix!r}")
        for field, value in asdict(self).items():
            if field != "incident_prefix" and not _IDENT.match(value):
                raise ConfigError(f"invalid {field} table name {value!r}: lower-case letters, digits and '_'")

    @classmethod
    def from_settings(cls, settings: Settings, inbox: str | None = None) -> SchemaNames:
        """The names this process uses: the domain's from settings, the inbox's from the receiver's variable."""
        d: DomainConfig = settings.domain
        table = inbox or os.environ.get(INBOX_TABLE_ENV) or cls.inbox
        return cls(inbox=table, orders=d.orders_table, outbox=d.outbox_table, policy=d.policy_table)

    @property
    def changes(self) -> str:
        """The orders table's change log (0003_domain_order_changes)."""
        return changes_table(self.orders)

    def _track_names(self, track: str) -> tuple[str, ...]:
        if track == CORE:
            return (self.incident_prefix, self.inbox)
        if track == DOMAIN:
            return (self.orders, self.outbox, self.policy)
        raise ValueError(f"unknown migration track {track!r}")

    def version_table(self, track: str) -> str:
        name = f"cassandra_recovery_{track}_version"
        own = self._track_names(track)
        if own == SchemaNames()._track_names(track):
            return name
        return f"{name}_{hashlib.sha256('/'.join(own).encode()).hexdigest()[:10]}"
