"""Shared set-up of the degraded-mode cluster tests: own table names, PostgreSQL up, parts per test."""

from __future__ import annotations

from cassandra_recovery.settings import DomainConfig, Settings

# Own names so the tests never touch the demo's `shop.orders` / `orders`.
DOMAIN = {
    "keyspace": "shop_test",
    "cassandra_table": "orders",
    "orders_table": "orders_ct",
    "outbox_table": "outbox_ct",
    "policy_table": "policy_ct",
}


def degraded_settings(**domain: object) -> Settings:
    base = Settings()
    cfg = DomainConfig(**{**DOMAIN, **domain})  # type: ignore[arg-type]
    return base.model_copy(update={"domain": cfg})


def domain_env(**domain: object) -> dict[str, str]:
    """The same domain as environment variables, for subprocesses."""
    return {f"CASSANDRA_RECOVERY_DOMAIN__{k.upper()}": str(v) for k, v in {**DOMAIN, **domain}.items()}
