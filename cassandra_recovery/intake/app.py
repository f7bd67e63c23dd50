"""The HTTP face: FastAPI app; authentication, then a rate limit per credential, size limit, parsing, ingest."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from cassandra_recovery.clients.slack_interactive import signature_valid
from cassandra_recovery.intake.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, bearer_identity, signature_identity
from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.ops import add_ops_routes
from cassandra_recovery.intake.payload import SOURCES, PayloadError, parse
from cassandra_recovery.intake.ratelimit import RateLimiter
from cassandra_recovery.intake.rejected import RejectedBodies
from cassandra_recovery.intake.service import Intake
from cassandra_recovery.intake.slack_actions import SlackActions

_DOC = """Alert receiver of cassandra-recovery. `POST /alerts/alertmanager` (webhook version 4) and
`POST /alerts/grafana` (version 1) take `Authorization: Bearer <token>`; `POST /alerts/generic` takes
`X-CR-Timestamp: <unix seconds>` and `X-CR-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`,
valid for 5 minutes. Answers: 200 taken (each alert: delivered, recorded, spooled, direct or duplicate),
400 malformed JSON, 401 credentials, 408 body too slow, 413 too large (bytes or alerts per request), 422 invalid
field (named) or an alert PostgreSQL refused (result `rejected`, e.g. NUL in a field; the body is kept for
inspection), 429 rate limited,
503 neither PostgreSQL nor Prefect could take an alert (retry). `POST /slack/interactions` (when a Slack signing
secret is set) takes Slack's interactivity requests, signed by Slack (`X-Slack-Signature`, 5 minutes): 200 at
once, the click handled in the background; 401 bad or stale signature."""


def slack_payload(body: bytes) -> dict[str, Any] | None:
    """The JSON `payload` field of Slack's form-encoded interactivity body, or None when it has none."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        doc = json.loads(fields["payload"][-1])
    except (UnicodeDecodeError, ValueError, KeyError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


class _Reject(Exception):
    def __init__(self, status: int, reason: str, detail: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


def create_app(
    config: ReceiverConfig,
    intake: Intake,
    default_cluster: str,
    known_cluster: Callable[[str], bool] = lambda _: True,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    health: Callable[[], dict[str, Any]] = dict,
    slack: SlackActions | None = None,
    rejected: RejectedBodies | None = None,
) -> FastAPI:
    """The app; every outside party comes in as an argument, so tests pass fakes and a fake clock."""
    app = FastAPI(title="cassandra-recovery alert receiver", description=_DOC, version="1")
    limiter = RateLimiter(config.rate_per_s, config.rate_burst, clock, config.rate_max_clients)
    metrics = intake.metrics

    async def read_body(request: Request) -> bytes:
        # uvicorn has no body deadline: a sender trickling bytes would hold a connection and a request forever.
        try:
            return await asyncio.wait_for(read_body_unbounded(request), config.body_timeout_s)
        except TimeoutError:
            raise _Reject(408, "timeout", f"body not received within {config.body_timeout_s:g} s") from None

    async def read_body_unbounded(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        # isascii: str.isdigit() also accepts '²', which int() refuses.
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            raise _Reject(400, "malformed", "Content-Length is not a number")
        if declared is not None and int(declared) > config.max_body_bytes:
            raise _Reject(413, "too_large", f"body larger than {config.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():  # chunked bodies have no length: count as they come
            body += chunk
            if len(body) > config.max_body_bytes:
                raise _Reject(413, "too_large", f"body larger than {config.max_body_bytes} bytes")
        return bytes(body)

    def limit(identity: str) -> None:
        # Keyed by credential, after authentication: an unauthenticated flood (every local client shares the
        # loopback address) gets 401 and never drains a sender's bucket; Alertmanager does not retry a 429.
        wait = limiter.check(identity)
        if wait > 0:
            raise _Reject(429, "rate_limited", "too many requests", {"Retry-After": str(max(1, round(wait)))})

    async def handle(source: str, request: Request) -> Response:
        try:
            if source != "generic":
                identity = bearer_identity(request.headers.get("authorization"), config.tokens)
                if identity is None:
                    raise _Reject(401, "auth", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
                limit(identity)
                body = await read_body(request)
            else:
                body = await read_body(request)  # the signature covers the body
                signer, why = signature_identity(
                    request.headers.get(TIMESTAMP_HEADER),
                    request.headers.get(SIGNATURE_HEADER),
                    body,
                    config.hmac_secrets,
                    wall_clock(),
                    config.replay_window_s,
                )
                if signer is None:
                    raise _Reject(401, "auth", f"signature {str(why).replace('_', ' ')}")
                limit(signer)
            try:
                doc = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                raise _Reject(400, "malformed", f"malformed JSON: {e}") from None
            count = len(doc["alerts"]) if isinstance(doc, dict) and isinstance(doc.get("alerts"), list) else 0
            if count > config.max_alerts_per_request:
                # Each alert may take up to inline_timeout_s: a huge group would hold the request for minutes.
                most = config.max_alerts_per_request
                raise _Reject(413, "too_large", f"{count} alerts in one request; at most {most}")
            try:
                alerts = parse(source, doc, default_cluster, known_cluster)
            except PayloadError as e:
                raise _Reject(422, "invalid", e.errors) from None
        except _Reject as r:
            metrics.rejected.labels(r.reason).inc()
            return JSONResponse({"detail": r.detail}, status_code=r.status, headers=r.headers)
        result = await run_in_threadpool(intake.ingest, alerts)
        kept: dict[str, Any] = {}
        if result.rejected:
            metrics.rejected.labels("refused_by_store").inc()
            if rejected is not None:
                why = "; ".join(f"{a.dedup_key}: {a.detail}" for a in result.alerts if a.result == "rejected")
                kept["kept_as"] = await run_in_threadpool(rejected.keep, source, body, why)
        if result.http_status >= 500:
            metrics.rejected.labels("unavailable").inc()
            return JSONResponse(result.as_dict(), status_code=503, headers={"Retry-After": "10"})
        return JSONResponse({**result.as_dict(), **kept}, status_code=result.http_status)

    responses: dict[int | str, dict[str, Any]] = {
        code: {"description": text}
        for code, text in [
            (400, "malformed JSON"),
            (401, "missing or wrong credentials"),
            (408, "body not received in time"),
            (413, "body too large, or too many alerts in one request"),
            (422, "invalid field, named in detail[].loc; or an alert the inbox refused (result `rejected`)"),
            (429, "rate limited; see Retry-After"),
            (503, "neither the inbox nor Prefect could take an alert; retry"),
        ]
    }

    def route(source: str) -> None:
        async def endpoint(request: Request) -> Response:
            return await handle(source, request)

        endpoint.__name__ = f"receive_{source}"
        app.post(f"/alerts/{source}", responses=responses, summary=f"receive a {source} webhook")(endpoint)

    for source in SOURCES:
        route(source)

    secret = config.slack_signing_secret
    if slack is not None and secret is not None:

        @app.post("/slack/interactions", summary="Slack interactivity (Approve/Reject buttons)")
        async def slack_interactions(request: Request) -> Response:
            try:
                body = await read_body(request)
                ts, sig = request.headers.get("x-slack-request-timestamp"), request.headers.get("x-slack-signature")
                if not signature_valid(secret.get_secret_value(), body, ts, sig, wall_clock):
                    raise _Reject(401, "auth", "bad or stale Slack signature")
                limit("slack")
                payload = slack_payload(body)
                if payload is None:
                    raise _Reject(400, "malformed", "expected a form body with a JSON `payload`")
            except _Reject as r:
                metrics.rejected.labels(r.reason).inc()
                return JSONResponse({"detail": r.detail}, status_code=r.status, headers=r.headers)
            slack.handle(payload)  # returns at once: the work runs on the actions' pool
            return Response(status_code=200)

    add_ops_routes(app, metrics, health)  # also on their own listener when `ops_port` is set

    def openapi() -> dict[str, Any]:
        # Bodies are read raw (signatures need the exact bytes, and nothing is parsed before authentication),
        # so FastAPI cannot see the models: put their schemas into the description by hand.
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for source, model in SOURCES.items():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            ref = {"$ref": f"#/components/schemas/{model.__name__}"}
            op = spec["paths"][f"/alerts/{source}"]["post"]
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
            op["security"] = [{"hmac": []}] if source == "generic" else [{"bearer": []}]
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "hmac": {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER, "description": _DOC},
        }
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    return app
