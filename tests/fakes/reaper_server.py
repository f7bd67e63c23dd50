"""A local HTTP server that speaks the part of Cassandra Reaper's REST API mitigation uses, as Reaper documents it
(cassandra-reaper.io/docs/api, RepairScheduleResource / RepairRunResource):

- `POST /login`, form `username`, `password`: 200 with a session cookie and, like Reaper 3.x, a JWT in the body;
  401 for bad credentials. With `auth` set, every other call without the cookie or the bearer token gets 401.
- `GET /repair_schedule?clusterName=`: the schedules (RepairScheduleStatus JSON: id, state, cluster_name,
  keyspace_name, ...).
- `PUT /repair_schedule/{id}?state=`: 200 when changed (ACTIVE <-> PAUSED), 204 when already in that state, 400
  without or with an unknown state, 404 for an unknown id.
- `GET /repair_run?cluster_name=&state=`: the runs in those states (comma-separated).
- `PUT /repair_run/{id}/state/{state}`: 200 when changed (RUNNING <-> PAUSED), 304 when already in that state, 409
  for a transition Reaper refuses (a DONE run), 404 for an unknown id.

    with FakeReaper(schedules={...}, runs={...}) as reaper:
        ReaperConfig(url=reaper.url, cluster_name="prod")
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLUSTER = "prod"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"  # noqa: S105 - the fake's own JWT
COOKIE = "JSESSIONID=fake-session"


@dataclass
class FakeReaper:
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"state", "keyspace_name", ...}
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth: tuple[str, str] | None = None  # (username, password) when access control is on
    bearer_only: bool = False  # Reaper 3.x+: only the JWT authenticates, no session cookie
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path with query, body)

    def __enter__(self) -> FakeReaper:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

            def _reply(self, status: int, body: Any = None, cookie: bool = False) -> None:
                raw = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if cookie and not fake.bearer_only:
                    self.send_header("Set-Cookie", COOKIE + "; Path=/")
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self) -> None:
                url = urlsplit(self.path)
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size).decode() if size else ""
                fake.requests.append((self.command, self.path, body))
                if self.command == "POST" and url.path == "/login":
                    form = {k: v[0] for k, v in parse_qs(body).items()}
                    if fake.auth and (form.get("username"), form.get("password")) != fake.auth:
                        return self._reply(401, {"message": "Invalid credentials"})
                    return self._reply(200, {"token": TOKEN}, cookie=True)
                authed = self.headers.get("Authorization") == f"Bearer {TOKEN}" or (
                    not fake.bearer_only and COOKIE in (self.headers.get("Cookie") or "")
                )
                if fake.auth and not authed:
                    return self._reply(401)
                return fake.route(self, url.path, {k: v[0] for k, v in parse_qs(url.query).items()})

            do_GET = do_PUT = do_POST = _handle  # noqa: N815 - http.server's names

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route(self, h: Any, path: str, query: dict[str, str]) -> None:
        parts = path.strip("/").split("/")
        if h.command == "GET" and parts == ["repair_schedule"]:
            return h._reply(200, self._listed(self.schedules, query.get("clusterName")))
        if h.command == "GET" and parts == ["repair_run"]:
            states = set(query["state"].split(",")) if "state" in query else None
            listed = self._listed(self.runs, query.get("cluster_name"))
            return h._reply(200, [r for r in listed if states is None or r["state"] in states])
        if h.command == "PUT" and len(parts) == 2 and parts[0] == "repair_schedule":  # noqa: PLR2004
            return self._change(h, self.schedules, parts[1], query.get("state"), {"ACTIVE", "PAUSED"}, 204, 400)
        if h.command == "PUT" and len(parts) == 4 and parts[0] == "repair_run" and parts[2] == "state":  # noqa: PLR2004
            return self._change(h, self.runs, parts[1], parts[3], {"RUNNING", "PAUSED"}, 304, 409)
        return h._reply(404, {"message": f"no resource {path}"})

    @staticmethod
    def _listed(items: dict[str, dict[str, Any]], cluster: str | None) -> list[dict[str, Any]]:
        rows = [{"id": i, "cluster_name": CLUSTER, **v} for i, v in items.items()]
        return [r for r in rows if cluster is None or r["cluster_name"] == cluster]

    @staticmethod
    def _change(h: Any, items: dict[str, dict[str, Any]], item: str, state: str | None, allowed: set[str],
                same: int, refused: int) -> None:  # fmt: skip
        if item not in items:
            return h._reply(404, {"message": f"{item} not found"})
        if state is None:
            return h._reply(400, {"message": '"state" argument missing'})
        if items[item]["state"] == state:
            return h._reply(same)
        if state not in allowed or items[item]["state"] not in allowed:
            return h._reply(refused, {"message": f"Transition {items[item]['state']}->{state} not supported."})
        items[item]["state"] = state
        return h._reply(200, {"id": item, **items[item]})
