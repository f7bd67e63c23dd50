"""`/healthz` and `/metrics`: on the ingest app, and on a listener of their own (`ops_port`) that floods of
alert requests cannot starve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cassandra_recovery.intake.metrics import ReceiverMetrics


def add_ops_routes(app: FastAPI, metrics: ReceiverMetrics, health: Callable[[], dict[str, Any]]) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **health()}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_ops_app(metrics: ReceiverMetrics, health: Callable[[], dict[str, Any]] = dict) -> FastAPI:
    """The health-and-metrics app alone (no docs, no alert routes)."""
    app = FastAPI(title="cassandra-recovery receiver health", docs_url=None, redoc_url=None, openapi_url=None)
    add_ops_routes(app, metrics, health)
    return app
