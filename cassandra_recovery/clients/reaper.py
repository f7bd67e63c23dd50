"""Cassandra Reaper's REST API, the few calls mitigation needs: list and pause/resume repair schedules and runs.

Documented API (cassandra-reaper.io/docs/api): `POST /login` (form username, password; a session cookie, and in 3.x+
a JWT in the body to send as `Authorization: Bearer`), `GET /repair_schedule?clusterName=`, `PUT
/repair_schedule/{id}?state=PAUSED|ACTIVE` (200 changed, 204 already in that state), `GET
/repair_run?cluster_name=&state=RUNNING`, `PUT /repair_run/{id}/state/PAUSED|RUNNING` (200 changed, 304 already).
Credentials travel only in the login form body: never in a URL, a log line or an error.
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.settings import ReaperConfig

log = logging.getLogger(__name__)
_JWT_PARTS = 3


class ReaperError(RecoveryError):
    """Reaper could not be reached or refused a call; names the call and the status, never a credential."""


@dataclass(frozen=True)
class ReaperItem:
    """A repair schedule or run as Reaper lists it."""

    id: str
    state: str  # schedules: ACTIVE, PAUSED; runs: NOT_STARTED, RUNNING, PAUSED, DONE, ERROR, ABORTED
    keyspace: str


class ReaperClient:
    def __init__(self, config: ReaperConfig):
        self.config = config
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self._bearer: str | None = None
        self._logged_in = False

    # the calls ----------------------------------------------------------------------------------------
    def schedules(self) -> list[ReaperItem]:
        """This cluster's repair schedules (filtered here too: older Reapers ignore the parameter)."""
        return self._items("GET", "/repair_schedule", {"clusterName": self.config.cluster_name})

    def running_runs(self) -> list[ReaperItem]:
        runs = self._items("GET", "/repair_run", {"cluster_name": self.config.cluster_name, "state": "RUNNING"})
        return [r for r in runs if r.state == "RUNNING"]

    def set_schedule_state(self, schedule_id: str, state: str) -> bool:
        """True when Reaper changed it, False when it already was in that state."""
        status, _ = self._call("PUT", f"/repair_schedule/{_segment(schedule_id)}", {"state": state})
        return status == 200  # noqa: PLR2004 - 204: already in that state

    def set_run_state(self, run_id: str, state: str) -> bool:
        status, _ = self._call("PUT", f"/repair_run/{_segment(run_id)}/state/{_segment(state)}")
        return status == 200  # noqa: PLR2004 - 304: already in that state

    # HTTP -------------------------------------------------------------------------------------------
    def _items(self, method: str, path: str, query: dict[str, str]) -> list[ReaperItem]:
        _, body = self._call(method, path, query)
        if not isinstance(body, list):
            raise ReaperError(f"Reaper {method} {path}: expected a JSON list, got {type(body).__name__}")
        out = []
        for item in body:
            if not isinstance(item, dict) or "id" not in item or "state" not in item:
                raise ReaperError(f"Reaper {method} {path}: unexpected item {str(item)[:200]}")
            if item.get("cluster_name") not in (None, self.config.cluster_name):
                continue
            out.append(ReaperItem(str(item["id"]), str(item["state"]), str(item.get("keyspace_name") or "")))
        return out

    def _call(self, method: str, path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
        if self.config.username and not self._logged_in:
            self._login()
        status, body = self._send(method, path, query)
        if status == 401 and self.config.username:  # noqa: PLR2004 - the session expired: log in again, once
            self._login()
            status, body = self._send(method, path, query)
        if status >= 400:  # noqa: PLR2004
            raise ReaperError(f"Reaper {method} {path} answered {status}: {str(body)[:200]}")
        return status, body

    def _login(self) -> None:
        password = self.config.password.get_secret_value() if self.config.password else ""
        form = urllib.parse.urlencode({"username": self.config.username or "", "password": password}).encode()
        status, body = self._send("POST", "/login", None, form)
        if status >= 400:  # noqa: PLR2004
            raise ReaperError(f"Reaper login as {self.config.username!r} refused ({status})")
        token = body.get("token") if isinstance(body, dict) else body if isinstance(body, str) else None
        if isinstance(token, str) and token.count(".") == _JWT_PARTS - 1:
            self._bearer = token
        self._logged_in = True

    def _send(self, method: str, path: str, query: dict[str, str] | None, form: bytes | None = None) -> tuple[int, Any]:
        url = self.config.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self._bearer:
            headers["Authorization"] = f"Bearer {self._bearer}"
        req = urllib.request.Request(url, data=form, method=method, headers=headers)  # noqa: S310 - http(s) only
        log.debug("reaper %s %s", method, path)
        try:
            with self._opener.open(req, timeout=self.config.timeout_s) as resp:
                return resp.status, _body(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, _body(e.read())
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ReaperError(f"Reaper at {self.config.url} not reachable ({method} {path}): {reason}") from None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _body(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
