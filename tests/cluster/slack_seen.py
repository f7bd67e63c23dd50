"""Every request the fake Slack servers of this pytest process received, for the secrets check (issue 20): the
servers still up, and what the closed ones saw."""

from __future__ import annotations

import json

from tests.fakes.slack_server import FakeSlackServer

_live: list[FakeSlackServer] = []
_closed: list[str] = []


def _dump(server: FakeSlackServer) -> str:
    # The token authenticates the request (a header; a form field for some clients): not something Slack was told.
    return json.dumps(
        [{"method": c.method, "params": {k: v for k, v in c.params.items() if k != "token"}} for c in server.calls],
        default=str,
    )


def watch(server: FakeSlackServer) -> None:
    _live.append(server)


def closed(server: FakeSlackServer) -> None:
    _live.remove(server)
    _closed.append(_dump(server))


def everything() -> str:
    """What every fake Slack of this process was sent (messages, updates, replies, reactions), as JSON lines."""
    return "\n".join([*_closed, *(_dump(s) for s in _live)])
