"""Raw ASGI requests: header bytes reach the app exactly as sent (TestClient re-encodes them as UTF-8)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


def body_once(body: bytes) -> Receive:
    """A receive callable that hands the whole body over in one message, then reports a disconnect."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the app only asks again once the response is done
        return {"type": "http.disconnect"}

    return receive


async def body_never_comes() -> dict[str, Any]:
    """A sender that opened the request and sends nothing more (a slow-body attack)."""
    await asyncio.Event().wait()
    return {"type": "http.disconnect"}


def post(app: Any, path: str, headers: list[tuple[bytes, bytes]], receive: Receive, guard_s: float = 60.0) -> int:
    """The status code the app answers a POST with (a raised exception propagates, like a 500 would). `guard_s`
    only keeps a hanging app from hanging the test run: it then fails with TimeoutError."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower(), v) for k, v in headers], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 9095),
    }  # fmt: skip
    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    asyncio.run(asyncio.wait_for(app(scope, receive, send), guard_s))
    return status[0]
