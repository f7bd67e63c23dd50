"""Pure parts of the receiver: bearer tokens with rotation, HMAC signatures, token buckets, backoff, settings."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.intake.auth import check_bearer, check_signature, sign
from cassandra_recovery.intake.config import ReceiverConfig, load_receiver_config
from cassandra_recovery.intake.ports import backoff_s
from cassandra_recovery.intake.ratelimit import RateLimiter, TokenBucket
from tests import faults as F

pytestmark = pytest.mark.area("intake")

OLD, NEW = "old-token-0123456789abcdef", "new-token-fedcba9876543210"
SECRET = "generic-secret-0123456789"
NOW = 1_741_944_000.0


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {OLD}", True),
        (f"Bearer {NEW}", True),
        (f"bearer {NEW}", True),  # the scheme is case-insensitive (RFC 7235)
        (f"Bearer {NEW[:-1]}", False),
        (f"Bearer {NEW}x", False),
        (f"Basic {NEW}", False),
        ("Bearer ", False),
        (None, False),
        ("", False),
    ],
)
def test_bearer_accepts_both_tokens_during_a_rotation(header: str | None, ok: bool) -> None:
    assert check_bearer(header, [SecretStr(OLD), SecretStr(NEW)]) is ok


def test_after_rotation_the_old_token_is_refused_and_no_tokens_refuse_all() -> None:
    assert check_bearer(f"Bearer {OLD}", [SecretStr(NEW)]) is False
    assert check_bearer(f"Bearer {NEW}", []) is False


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"alerts": []}'
    expected = hmac.new(SECRET.encode(), b"1741944000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1741944000", body) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("ts", "sig", "body", "why"),
    [
        ("1741944000", None, b"{}", None),  # fresh and signed: valid
        ("1741943700", None, b"{}", None),  # exactly 5 minutes old: still valid
        ("1741943699", None, b"{}", "expired"),
        ("1741944301", None, b"{}", "expired"),  # from the future beyond the window
        ("1741944000", "sha256=" + "0" * 64, b"{}", "bad_signature"),
        ("1741944000", "forged", b"{}", "bad_signature"),
        ("17419.4400", None, b"{}", "bad_timestamp"),
        ("-1", None, b"{}", "bad_timestamp"),
        (None, None, b"{}", "missing"),
    ],
)
def test_signature_checks(ts: str | None, sig: str | None, body: bytes, why: str | None) -> None:
    signature = sig if sig is not None else (sign(SECRET, ts, body) if ts else None)
    assert check_signature(ts, signature, body, [SecretStr(SECRET)], NOW, 300.0) == why


def test_signature_over_another_body_or_timestamp_fails() -> None:
    good = sign(SECRET, "1741944000", b'{"a": 1}')
    assert check_signature("1741944000", good, b'{"a": 2}', [SecretStr(SECRET)], NOW, 300) == "bad_signature"
    assert check_signature("1741943999", good, b'{"a": 1}', [SecretStr(SECRET)], NOW, 300) == "bad_signature"


def test_signature_rotation_accepts_either_secret() -> None:
    other = "second-secret-abcdefghijk"
    secrets = [SecretStr(SECRET), SecretStr(other)]
    for s in (SECRET, other):
        assert check_signature("1741944000", sign(s, "1741944000", b"x"), b"x", secrets, NOW, 300) is None
    assert check_signature("1741944000", sign("third-secret-000000000", "1741944000", b"x"), b"x", secrets, NOW, 300)


@pytest.mark.fault(F.ALERT_FLOOD)
def test_token_bucket_allows_burst_then_refills_at_rate() -> None:
    b = TokenBucket(rate=2.0, burst=3, tokens=3.0, updated=0.0)
    assert [b.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(0.0) == pytest.approx(0.5)  # one token in half a second
    assert b.take(0.5) == 0.0
    assert b.take(100.0) == 0.0 and b.tokens == pytest.approx(2.0)  # capped at the burst


@pytest.mark.fault(F.ALERT_FLOOD)
def test_rate_limiter_is_per_client_and_uses_the_injected_clock() -> None:
    clock = Clock()
    rl = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert [rl.check("10.0.0.1") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert rl.check("10.0.0.2") == 0.0  # another client has its own bucket
    clock.t += 1.0
    assert rl.check("10.0.0.1") == 0.0


def test_rate_limiter_forgets_old_clients_beyond_its_bound() -> None:
    rl = RateLimiter(rate=1.0, burst=1, clock=Clock(), max_clients=2)
    assert rl.check("a") == 0.0 and rl.check("a") > 0
    rl.check("b")
    rl.check("c")  # "a" is forgotten: a fresh bucket
    assert rl.check("a") == 0.0
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1, clock=Clock())


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_s(n, 2.0, 30.0) for n in (1, 2, 3, 4, 5, 50)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_config_from_environment_with_two_tokens(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "CASSANDRA_RECOVERY_RECEIVER__TOKENS": f"{OLD}, {NEW}",
        "CASSANDRA_RECOVERY_RECEIVER__HMAC_SECRETS": f'["{SECRET}"]',
        "CASSANDRA_RECOVERY_RECEIVER__PORT": "9200",
        "CASSANDRA_RECOVERY_RECEIVER__MAX_BODY_BYTES": "2048",
        "CASSANDRA_RECOVERY_OTHER": "ignored",
    }
    cfg = load_receiver_config(env, host="0.0.0.0", port=None)
    assert [t.get_secret_value() for t in cfg.tokens] == [OLD, NEW]
    assert [s.get_secret_value() for s in cfg.hmac_secrets] == [SECRET]
    assert (cfg.host, cfg.port, cfg.max_body_bytes) == ("0.0.0.0", 9200, 2048)  # the override wins, None does not
    logging.getLogger("test").warning("config %s %r", cfg, cfg)
    assert OLD not in repr(cfg) and NEW not in caplog.text and SECRET not in str(cfg)


def test_config_defaults_bind_loopback() -> None:
    cfg = load_receiver_config({})
    assert (cfg.host, cfg.port, cfg.max_body_bytes, cfg.replay_window_s, cfg.tls) == (
        "127.0.0.1",
        9095,
        1024 * 1024,
        300.0,
        False,
    )


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"CASSANDRA_RECOVERY_RECEIVER__TOKENS": "short"}, "tokens"),
        ({"CASSANDRA_RECOVERY_RECEIVER__PORT": "eighty"}, "port"),
        ({"CASSANDRA_RECOVERY_RECEIVER__TLS_CERTFILE": "/etc/x.pem"}, "tls"),
        ({"CASSANDRA_RECOVERY_RECEIVER__HMAC_SECRETS": "[not json"}, "HMAC_SECRETS"),
    ],
)
def test_invalid_config_names_the_field_and_not_the_secret(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_receiver_config(env)
    assert field in str(e.value)
    assert "short" not in str(e.value)  # the rejected token itself is never echoed


def test_tls_needs_both_files() -> None:
    assert ReceiverConfig(tls_certfile="/c.pem", tls_keyfile="/k.pem").tls  # type: ignore[arg-type]


def test_token_files_add_tokens_and_must_be_private(tmp_path: Path) -> None:
    good = tmp_path / "receiver.token"
    good.write_text(NEW + "\n")
    good.chmod(0o600)
    cfg = load_receiver_config({"CASSANDRA_RECOVERY_RECEIVER__TOKENS": OLD}, token_files=[good])
    assert [t.get_secret_value() for t in cfg.tokens] == [OLD, NEW]
    good.chmod(0o644)
    with pytest.raises(ConfigError, match="must be 0600"):
        load_receiver_config({}, token_files=[good])
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(ConfigError, match="is empty"):
        load_receiver_config({}, token_files=[empty])
    with pytest.raises(ConfigError, match="missing.token"):
        load_receiver_config({"CASSANDRA_RECOVERY_RECEIVER__TOKEN_FILES": str(tmp_path / "missing.token")})
