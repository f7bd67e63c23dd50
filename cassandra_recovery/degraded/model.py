"""The example domain's value types: an order, validated at the edge, and where a read came from."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints, field_validator

from cassandra_recovery.logic.checksum import to_millis
from cassandra_recovery.logic.murmur3 import token_of


def _no_control_chars(v: str) -> str:
    if any(unicodedata.category(c) == "Cc" for c in v):
        raise ValueError("control characters are not allowed")
    return v


# The control-character check is part of the type, so validate_id (reads) refuses what Order (writes) refuses.
OrderId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strict=True), AfterValidator(_no_control_chars)
]


class Order(BaseModel):
    """An order as the service accepts it; ids with SQL/CQL syntax are just text, stored literally."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: OrderId
    customer: Annotated[str, StringConstraints(min_length=1, max_length=256, strict=True)]
    status: Annotated[str, StringConstraints(min_length=1, max_length=32, strict=True)]
    amount_cents: StrictInt = Field(ge=0, le=2**62)
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC), validate_default=True)

    @field_validator("id", "customer", "status")
    @classmethod
    def _printable(cls, v: str) -> str:
        return _no_control_chars(v)

    @field_validator("updated_at")
    @classmethod
    def _millis_utc(cls, v: datetime) -> datetime:
        # Cassandra keeps milliseconds, PostgreSQL microseconds: store what both can hold exactly.
        if v.tzinfo is None:
            raise ValueError("updated_at must carry a time zone")
        v = v.astimezone(UTC)
        return v.replace(microsecond=v.microsecond // 1000 * 1000)

    @property
    def token(self) -> int:
        return token_of(self.id)

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer": self.customer,
            "status": self.status,
            "amount_cents": self.amount_cents,
            "updated_at_ms": to_millis(self.updated_at),
        }


class StoredOrder(BaseModel):
    """An order with the version PostgreSQL gave it (the version orders every copy of the row)."""

    model_config = ConfigDict(frozen=True)

    order: Order
    version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StoredOrder:
        """From a PostgreSQL or Cassandra row (the driver returns naive UTC datetimes)."""
        updated: datetime = row["updated_at"]
        if updated.tzinfo is None:
            updated = updated.replace(tzinfo=UTC)
        order = Order(
            id=row["id"],
            customer=row["customer"],
            status=row["status"],
            amount_cents=int(row["amount_cents"]),
            updated_at=updated,
        )
        return cls(order=order, version=int(row["version"]))


class ReadSource(StrEnum):
    CASSANDRA = "cassandra"
    POSTGRES = "postgres"


class ReadResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    order: StoredOrder | None
    source: ReadSource
    reason: str  # why this source: "cache", "cache miss", "breaker open", "policy", "lag 7.2s > 5s", "error: ..."
