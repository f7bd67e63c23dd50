"""Request authentication: bearer tokens (Alertmanager, Grafana) and HMAC-SHA256 signatures (generic form)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

TIMESTAMP_HEADER = "X-CR-Timestamp"
SIGNATURE_HEADER = "X-CR-Signature"
_SCHEME = "sha256="


def _any_equal(given: bytes, secrets: Sequence[bytes]) -> bool:
    # Compare against every accepted value, never stopping early, so timing says nothing about which matched.
    ok = False
    for s in secrets:
        ok |= hmac.compare_digest(given, s)
    return ok


def check_bearer(authorization: str | None, tokens: Sequence[SecretStr]) -> bool:
    """`Authorization: Bearer <token>` with any of the accepted tokens (two at once during a rotation)."""
    if not authorization or not tokens:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return _any_equal(given.strip().encode(), [t.get_secret_value().encode() for t in tokens])


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-CR-Signature` value: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def check_signature(
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    secrets: Sequence[SecretStr],
    now: float,
    window_s: float,
) -> str | None:
    """None when valid, else the reason (missing, bad_timestamp, expired, bad_signature).
    The timestamp is signed with the body, so an old capture cannot be re-dated; inside the window a replay
    is a duplicate, which the de-duplication key absorbs."""
    if not timestamp or not signature or not secrets:
        return "missing"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "bad_timestamp"
    if abs(now - int(timestamp)) > window_s:
        return "expired"
    given = signature.strip().lower().encode()
    expected = [sign(s.get_secret_value(), timestamp, body).encode() for s in secrets]
    return None if _any_equal(given, expected) else "bad_signature"
