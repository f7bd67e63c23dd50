"""Socket Mode: the same Approve/Reject handling for teams that cannot expose an HTTPS endpoint to Slack. The
receiver opens an outbound WebSocket with the app-level token (xapp-...); Slack sends each click as an
`interactive` envelope, which is acknowledged at once and handed to `SlackActions.handle`, as the HTTP endpoint
does. No signature here: the connection itself is authenticated by the app token; the allow-list still applies."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from cassandra_recovery.intake.slack_actions import SlackActions

log = logging.getLogger(__name__)
Listener = Callable[[BaseSocketModeClient, SocketModeRequest], None]


def interactive_listener(actions: SlackActions) -> Listener:
    """Acknowledges every envelope (Slack redelivers what is not acknowledged), then hands clicks to `actions`."""

    def listener(client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        if req.type == "interactive" and isinstance(req.payload, dict):
            actions.handle(req.payload)

    return listener


def start_socket_mode(app_token: SecretStr, actions: SlackActions, base_url: str | None = None) -> SocketModeClient:
    """Connected and listening on its own threads; `close()` it on the way out."""
    web = WebClient(base_url=base_url or WebClient.BASE_URL)  # apps.connections.open, with the app token
    client = SocketModeClient(app_token=app_token.get_secret_value(), web_client=web, logger=log)
    client.socket_mode_request_listeners.append(interactive_listener(actions))
    client.connect()
    return client
