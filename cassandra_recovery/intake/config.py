"""Receiver settings (`ReceiverConfig`), read from `CASSANDRA_RECOVERY_RECEIVER__*` environment variables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from cassandra_recovery.errors import ConfigError

ENV_PREFIX = "CASSANDRA_RECOVERY_RECEIVER__"
_LIST_FIELDS = ("tokens", "hmac_secrets", "token_files", "act_on", "slack_allowed_users")


class ReceiverConfig(BaseModel):
    """Everything the receiver needs; secrets are SecretStr so they never appear in reprs or logs."""

    model_config = {"frozen": True}

    host: str = "127.0.0.1"
    port: int = Field(default=9095, ge=0, le=65535)
    # Cluster of alerts without a `cluster` label; None: Settings().default_cluster.
    default_cluster: str | None = None
    # Bearer tokens for Alertmanager and Grafana; a list so a new token can be added before the old one goes.
    tokens: list[SecretStr] = Field(default_factory=list)
    # Files holding one token each (e.g. the lab monitoring's receiver.token, also read by Alertmanager's
    # credentials_file); mode 0600. Their tokens are added to `tokens` by load_receiver_config.
    token_files: list[Path] = Field(default_factory=list)
    # HMAC-SHA256 secrets for the generic form; a list for the same rotation reason.
    hmac_secrets: list[SecretStr] = Field(default_factory=list)
    replay_window_s: float = Field(default=300.0, gt=0)
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Alerts in one request (each may take up to inline_timeout_s); more is 413. Alertmanager's max_alerts in
    # its webhook_config keeps a group under it.
    max_alerts_per_request: int = Field(default=100, ge=1)
    # Seconds to receive a whole body (408 after) and the request line and headers (the connection is closed):
    # uvicorn has neither deadline of its own.
    body_timeout_s: float = Field(default=10.0, gt=0)
    header_timeout_s: float = Field(default=10.0, gt=0)
    # Open connections at most (uvicorn's limit_concurrency: 503 beyond it, which Alertmanager retries).
    max_connections: int = Field(default=100, ge=1)
    # /healthz and /metrics also on this port (same host), served by their own thread and event loop, so a flood
    # of alert requests or a full connection limit on `port` does not starve probes and scrapes: what Prometheus
    # scrapes (the lab's monitoring does). None: off.
    ops_port: int | None = Field(default=9096, ge=0, le=65535)
    # Generous: Alertmanager sends one request per group change; 429 is a 4xx it does not retry.
    rate_per_s: float = Field(default=10.0, gt=0)
    rate_burst: int = Field(default=50, ge=1)
    rate_max_clients: int = Field(default=10_000, ge=1)
    # The request waits this long for the inline delivery; after it the spooled alert is left to the deliverer.
    inline_timeout_s: float = Field(default=5.0, gt=0)
    # Firing alerts that start the incident flow (alertname globs); every other alert is stored and recorded
    # on the open incident only: a warning about the tool itself or a slow repair is not a cluster outage.
    act_on: list[str] = Field(
        default_factory=lambda: [
            "CassandraNode*Down",
            "CassandraNodeDown*",
            "CassandraHintsCritical",
            "CassandraDroppedMutations*",
        ]  # fmt: skip
    )
    deliver_interval_s: float = Field(default=3.0, gt=0)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=2880, ge=1)  # ~24 h at retry_max_s before an alert is marked dead
    table: str = "alert_inbox"
    # Bodies whose alerts PostgreSQL refused (NUL, lone surrogates: 422) are kept here as raw bytes, at most
    # `rejected_max_files`; None: $XDG_STATE_HOME/cassandra-recovery/rejected-alerts.
    rejected_dir: Path | None = None
    rejected_max_files: int = Field(default=1000, ge=0)
    # Slack interactivity (Approve/Reject buttons): the app's signing secret, or a 0600 file holding it; without
    # one, /slack/interactions does not exist. Only these user ids may answer (and only from `slack_team_id`, when
    # set). Socket Mode (`receiver --slack-socket`) also needs the app-level token (xapp-...).
    slack_signing_secret: SecretStr | None = None
    slack_signing_secret_file: Path | None = None
    slack_allowed_users: list[str] = Field(default_factory=list)
    slack_team_id: str | None = None
    slack_app_token: SecretStr | None = None
    slack_app_token_file: Path | None = None
    # Clicks are answered through their response_url only under this prefix (Slack's): a payload cannot send the
    # receiver elsewhere. Tests point it at a local fake.
    slack_response_url_prefix: str = "https://hooks.slack.com/"

    @field_validator("tokens", "hmac_secrets")
    @classmethod
    def _no_empty_secret(cls, v: list[SecretStr]) -> list[SecretStr]:
        if any(len(s.get_secret_value()) < 16 for s in v):
            raise ValueError("every token/secret needs at least 16 characters")
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> ReceiverConfig:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together")
        return self

    @model_validator(mode="after")
    def _slack_has_approvers(self) -> ReceiverConfig:
        slack = self.slack_signing_secret is not None or self.slack_app_token is not None
        if slack and not self.slack_allowed_users:
            raise ValueError("slack_allowed_users must name who may approve once Slack interactivity is set up")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None


def read_token_file(path: Path) -> str:
    """The token in `path`; ConfigError when missing, empty, or readable by others than its owner."""
    try:
        st = path.stat()
        token = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"token file {path}: {e.strerror}") from None
    if st.st_mode & 0o077:
        raise ConfigError(f"token file {path} has mode {oct(st.st_mode & 0o777)}; it must be 0600 (chmod 600 it)")
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return token


def _env_value(field: str, raw: str) -> Any:
    if field in _LIST_FIELDS:
        # A JSON list, or comma-separated for shells and systemd units.
        if raw.lstrip().startswith("["):
            return json.loads(raw)
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def load_receiver_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> ReceiverConfig:
    """ReceiverConfig from the environment, with explicit overrides (CLI flags) winning; ConfigError if invalid."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    for name, raw in env.items():
        if name.upper().startswith(ENV_PREFIX):
            field = name[len(ENV_PREFIX) :].lower()
            if field in ReceiverConfig.model_fields:
                try:
                    data[field] = _env_value(field, raw)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{name}: not a JSON list ({e.msg})") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = ReceiverConfig.model_validate(data)
        extra: dict[str, Any] = {}
        if config.token_files:
            extra["tokens"] = [*config.tokens, *(SecretStr(read_token_file(p)) for p in config.token_files)]
        if config.slack_signing_secret_file is not None:
            extra["slack_signing_secret"] = SecretStr(read_token_file(config.slack_signing_secret_file))
        if config.slack_app_token_file is not None:
            extra["slack_app_token"] = SecretStr(read_token_file(config.slack_app_token_file))
        return ReceiverConfig.model_validate({**config.model_dump(), **extra}) if extra else config
    except ValidationError as e:
        # Names the fields only: pydantic's message would echo the rejected (secret) input.
        fields = ", ".join(".".join(str(p) for p in err["loc"]) + f": {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid receiver settings ({ENV_PREFIX}*): {fields}") from None
