"""Serving the receiver with uvicorn: a header-read deadline (uvicorn has none), a connection limit, and the
health-and-metrics listener in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from cassandra_recovery.intake.config import ReceiverConfig


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request line and headers take longer than
    `header_timeout_s`. uvicorn's own timers do not cover it: `timeout_keep_alive` only runs between requests and
    stops at the first byte, and `h11_max_incomplete_event_size` bounds the size, not the time (slowloris)."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # a new request begins (also the next one on a kept-alive connection)
            self._arm_header_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # its headers are complete: the body has its own deadline
            self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.warning("closing a connection whose headers took over %.0f s", self.header_timeout_s)
            self.transport.close()


def header_deadline_protocol(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's `http=` with this deadline."""
    return type("ReceiverH11Protocol", (HeaderDeadlineProtocol,), {"header_timeout_s": timeout_s})


def uvicorn_options(config: ReceiverConfig) -> dict[str, Any]:
    """uvicorn.run/uvicorn.Config keyword arguments for the receiver (besides the app)."""
    return {
        "host": config.host,
        "port": config.port,
        "ssl_certfile": str(config.tls_certfile) if config.tls_certfile else None,
        "ssl_keyfile": str(config.tls_keyfile) if config.tls_keyfile else None,
        "log_level": "warning",
        "http": header_deadline_protocol(config.header_timeout_s),
        "limit_concurrency": config.max_connections,
    }


class OpsListener:
    """The health-and-metrics app on `ops_port`, in a daemon thread with its own event loop (uvicorn installs no
    signal handlers outside the main thread, so the main server keeps Ctrl-C)."""

    def __init__(self, app: FastAPI, config: ReceiverConfig) -> None:
        port = 0 if config.ops_port is None else config.ops_port
        options = {**uvicorn_options(config), "port": port, "limit_concurrency": None}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self._thread = threading.Thread(target=self.server.run, name="receiver-ops", daemon=True)

    def start(self, wait_s: float = 10.0) -> int:
        """Start serving; the bound port (useful with port 0). RuntimeError when it does not come up in time."""
        self._thread.start()
        give_up = time.monotonic() + wait_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > give_up:
                raise RuntimeError("the health-and-metrics listener did not start (port in use?)")
            time.sleep(0.02)
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
