"""`cassandra-recovery receiver`: the alert receiver (Alertmanager, Grafana, signed generic alerts) over HTTP(S), and
Slack's Approve/Reject clicks (its interactivity endpoint, or Socket Mode when an app-level token is set)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cassandra_recovery.commands import progress
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "receiver",
        help="receive Alertmanager/Grafana/generic alert webhooks and start the incident deployment",
        description="Tokens and secrets come from CASSANDRA_RECOVERY_RECEIVER__TOKENS and "
        "CASSANDRA_RECOVERY_RECEIVER__HMAC_SECRETS (comma-separated or a JSON list); every other "
        "ReceiverConfig field from CASSANDRA_RECOVERY_RECEIVER__<FIELD> (Slack approvals: SLACK_SIGNING_SECRET_FILE, "
        "SLACK_ALLOWED_USERS, SLACK_TEAM_ID, and SLACK_APP_TOKEN_FILE for Socket Mode).",
    )
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 9095)")
    p.add_argument(
        "--ops-port",
        type=int,
        default=None,
        help="also serve /healthz and /metrics on this port, what to scrape (default 9096)",
    )
    p.add_argument("--cluster", default=None, help="cluster of alerts without a `cluster` label")
    p.add_argument(
        "--token-file",
        type=Path,
        action="append",
        default=None,
        help="0600 file with a bearer token (repeat for a rotation), e.g. the lab monitoring's receiver.token",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from cassandra_recovery.intake.config import load_receiver_config
    from cassandra_recovery.intake.server import OpsListener, uvicorn_options
    from cassandra_recovery.intake.wiring import build_receiver

    say = progress("receiver")
    config = load_receiver_config(
        host=args.host,
        port=args.port,
        ops_port=args.ops_port,
        default_cluster=args.cluster,
        token_files=args.token_file,
    )
    if not config.tokens and not config.hmac_secrets:
        raise ConfigError(
            "no credentials: set CASSANDRA_RECOVERY_RECEIVER__TOKENS or --token-file (Alertmanager, Grafana) and/or "
            "CASSANDRA_RECOVERY_RECEIVER__HMAC_SECRETS (generic form)"
        )
    for path in (config.tls_certfile, config.tls_keyfile):
        if path is not None and not path.is_file():
            raise ConfigError(f"TLS file {path} does not exist")
    if config.host not in ("127.0.0.1", "::1", "localhost") and not config.tls:
        say(f"warning: listening on {config.host} without TLS; bearer tokens travel in clear text")
    receiver = build_receiver(settings, config, cluster=args.cluster)
    receiver.deliverer.start()
    scheme = "https" if config.tls else "http"
    say(f"listening on {scheme}://{config.host}:{config.port} (docs at /docs, metrics at /metrics)")
    ops: OpsListener | None = None
    socket = None
    if receiver.slack is not None:
        who = f"{len(config.slack_allowed_users)} allowed Slack user(s)"
        if config.slack_signing_secret is not None:
            say(f"Slack approvals at {scheme}://{config.host}:{config.port}/slack/interactions ({who})")
        if config.slack_app_token is not None:
            from cassandra_recovery.intake.slack_socket import start_socket_mode

            socket = start_socket_mode(config.slack_app_token, receiver.slack, settings.slack_base_url)
            say(f"Slack approvals over Socket Mode ({who})")
    try:
        if config.ops_port is not None and receiver.ops_app is not None:
            ops = OpsListener(receiver.ops_app, config)
            say(f"health and metrics also at {scheme}://{config.host}:{ops.start()}/healthz and /metrics")
        # Header deadline and connection limit here; body size, body deadline and alerts per request in the app.
        uvicorn.run(receiver.app, **uvicorn_options(config))
    finally:
        if ops is not None:
            ops.stop()
        if socket is not None:
            socket.close()
        receiver.close()
    return 0
