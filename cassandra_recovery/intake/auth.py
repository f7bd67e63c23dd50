"""Request authentication: bearer tokens (Alertmanager, Grafana) and HMAC-SHA256 signatures (generic form)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

TIMESTAMP_HEADER = "X-CR-Timestamp"
SIGNATURE_HEADER = "X-CR-Signature"
_SCHEME = "sha256="


def _which(given: bytes, secrets: Sequence[bytes]) -> int | None:
    # Compare against every accepted value, never stopping early, so timing says nothing about which matched.
    found: int | None = None
    for i, s in enumerate(secrets):
        if hmac.compare_digest(given, s) and found is None:
            found = i
    return found


def bearer_identity(authorization: str | None, tokens: Sequence[SecretStr]) -> str | None:
    """Which accepted token `Authorization: Bearer <token>` carries (`bearer#<index>`: a rate-limit key that
    names no secret), or None. Two tokens may be accepted at once during a rotation."""
    if not authorization or not tokens:
        return None
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    found = _which(given.strip().encode(), [t.get_secret_value().encode() for t in tokens])
    return None if found is None else f"bearer#{found}"


def check_bearer(authorization: str | None, tokens: Sequence[SecretStr]) -> bool:
    """`Authorization: Bearer <token>` with any of the accepted tokens."""
    return bearer_identity(authorization, tokens) is not None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-CR-Signature` value: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def signature_identity(
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    secrets: Sequence[SecretStr],
    now: float,
    window_s: float,
) -> tuple[str | None, str | None]:
    """(`hmac#<index>` of the secret that signed, None) when valid, else (None, reason): missing,
    bad_timestamp, expired, bad_signature. The timestamp is signed with the body, so an old capture cannot be
    re-dated; inside the window a replay is a duplicate, which the de-duplication key absorbs."""
    if not timestamp or not signature or not secrets:
        return None, "missing"
    # isascii: str.isdigit() also accepts '²' and other Unicode digits, which int() refuses.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return None, "bad_timestamp"
    if abs(now - int(timestamp)) > window_s:
        return None, "expired"
    given = signature.strip().lower().encode()
    found = _which(given, [sign(s.get_secret_value(), timestamp, body).encode() for s in secrets])
    return (None, "bad_signature") if found is None else (f"hmac#{found}", None)


def check_signature(
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    secrets: Sequence[SecretStr],
    now: float,
    window_s: float,
) -> str | None:
    """None when valid, else the reason (see signature_identity)."""
    return signature_identity(timestamp, signature, body, secrets, now, window_s)[1]
