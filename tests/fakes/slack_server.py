"""A local HTTP server that speaks enough of the Slack Web API for slack-sdk's WebClient.

Methods: chat.postMessage, chat.update, auth.test, conversations.info; response URLs under `/actions/`.
Bodies may be form-encoded or JSON (query-string parameters are merged in, as Slack does). Errors come back
the way Slack sends them: HTTP 200 with `{"ok": false, "error": ...}`; only faults injected by a test use other
statuses (5xx, 429 with Retry-After).

Limits enforced as Slack documents them: message text <= 40,000 chars (`msg_too_long`); at most
50 blocks, section text <= 3000, section fields <= 10 of <= 2000 each, header text <= 150,
context <= 10 elements, block_id <= 255, actions <= 25 buttons (plain_text <= 75, unique action_id
<= 255, value <= 2000, style primary|danger), text objects non-empty (`invalid_blocks`, with an
`errors` list naming the JSON pointer, like Slack). Stricter than Slack on one point: a reply
whose `thread_ts` is not a message of the channel fails with `thread_not_found`.

    with FakeSlackServer() as slack:
        client = WebClient(token=slack.token, base_url=slack.url)
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID = 255
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT, MAX_ACTION_ID, MAX_BUTTON_VALUE = 75, 255, 2000
_KNOWN_BLOCKS = {"section", "header", "context", "divider", "actions", "image", "rich_text", "markdown"}
RESPONSE_PATH = "/actions/"  # response_url of clicks: {url_root}/actions/<anything>
DEFAULT_TOKEN = "xoxb-fake-0000-token"  # noqa: S105 - a fake token for the fake server


@dataclass
class Call:
    """One request as the server saw it (after faults): method, merged params, HTTP status, outcome."""

    method: str
    params: dict[str, Any]
    status: int
    ok: bool
    error: str | None = None


@dataclass
class _Fault:
    kind: str  # "fail" | "ratelimit" | "hang"
    status: int = 500
    retry_after: int = 1
    seconds: float = 0.0


@dataclass
class _State:
    token: str
    channels: dict[str, str]  # id -> name
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # what was posted to response URLs
    faults: deque[_Fault] = field(default_factory=deque)
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def _block_errors(blocks: Any) -> list[str]:
    """Slack-style validation messages for a blocks array; empty when valid."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errs: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errs.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")

    def text_obj(obj: Any, ptr: str, limit: int | None, plain_only: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            errs.append(f"must be a text object [json-pointer:{ptr}]")
            return
        if plain_only and obj["type"] != "plain_text":
            errs.append(f"must be plain_text [json-pointer:{ptr}/type]")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            errs.append(f"must be more than 0 characters [json-pointer:{ptr}/text]")
        elif limit is not None and len(text) > limit:
            errs.append(f"must be less than {limit + 1} characters [json-pointer:{ptr}/text]")

    def button_errors(el: Any, ptr: str) -> None:
        _button_errors(el, ptr, text_obj, errs)

    for i, b in enumerate(blocks):
        ptr = f"/blocks/{i}"
        if not isinstance(b, dict) or b.get("type") not in _KNOWN_BLOCKS:
            errs.append(f"unsupported type [json-pointer:{ptr}/type]")
            continue
        bid = b.get("block_id")
        if bid is not None and (not isinstance(bid, str) or len(bid) > MAX_BLOCK_ID):
            errs.append(f"must be less than {MAX_BLOCK_ID + 1} characters [json-pointer:{ptr}/block_id]")
        kind = b["type"]
        if kind == "section":
            if "text" not in b and "fields" not in b:
                errs.append(f"must provide text or fields [json-pointer:{ptr}]")
            if "text" in b:
                text_obj(b["text"], f"{ptr}/text", MAX_SECTION_TEXT)
            if "fields" in b:
                fields = b["fields"]
                if not isinstance(fields, list) or not fields or len(fields) > MAX_FIELDS:
                    errs.append(f"must have 1 to {MAX_FIELDS} items [json-pointer:{ptr}/fields]")
                else:
                    for j, f in enumerate(fields):
                        text_obj(f, f"{ptr}/fields/{j}", MAX_FIELD_TEXT)
        elif kind == "header":
            text_obj(b.get("text"), f"{ptr}/text", MAX_HEADER_TEXT, plain_only=True)
        elif kind == "context":
            elements = b.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
                errs.append(f"must have 1 to {MAX_CONTEXT_ELEMENTS} items [json-pointer:{ptr}/elements]")
            else:
                for j, el in enumerate(elements):
                    if isinstance(el, dict) and el.get("type") == "image":
                        continue
                    text_obj(el, f"{ptr}/elements/{j}", None)
        elif kind == "actions":
            elements = b.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > MAX_ACTIONS_ELEMENTS:
                errs.append(f"must have 1 to {MAX_ACTIONS_ELEMENTS} items [json-pointer:{ptr}/elements]")
            else:
                ids = [el.get("action_id") for el in elements if isinstance(el, dict)]
                if len(set(ids)) != len(ids):
                    errs.append(f"action_id must be unique in a block [json-pointer:{ptr}/elements]")
                for j, el in enumerate(elements):
                    button_errors(el, f"{ptr}/elements/{j}")
    return errs


def _button_errors(el: Any, ptr: str, text_obj: Any, errs: list[str]) -> None:
    """Slack's checks on a button element (the only interactive element these messages use)."""
    if not isinstance(el, dict) or el.get("type") != "button":
        errs.append(f"unsupported type [json-pointer:{ptr}/type]")
        return
    text_obj(el.get("text"), f"{ptr}/text", MAX_BUTTON_TEXT, plain_only=True)
    aid, value, style = el.get("action_id"), el.get("value"), el.get("style")
    if aid is not None and (not isinstance(aid, str) or not aid or len(aid) > MAX_ACTION_ID):
        errs.append(f"must be 1 to {MAX_ACTION_ID} characters [json-pointer:{ptr}/action_id]")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
        errs.append(f"must be less than {MAX_BUTTON_VALUE + 1} characters [json-pointer:{ptr}/value]")
    if style is not None and style not in ("primary", "danger"):
        errs.append(f"must be primary or danger [json-pointer:{ptr}/style]")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _send(self, status: int, payload: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
        if isinstance(payload, str):
            body, ctype = payload.encode(), "text/html; charset=utf-8"
        else:
            body, ctype = json.dumps(payload).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) and closed the socket
            pass

    def _params(self) -> tuple[dict[str, Any], str | None]:
        url = urlsplit(self.path)
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if raw and ctype == "application/json":
            try:
                data = json.loads(raw)
            except ValueError:
                return params, "invalid_json"
            if not isinstance(data, dict):
                return params, "json_not_object"
            params.update(data)
        elif raw:
            if ctype not in ("application/x-www-form-urlencoded", ""):
                return params, "invalid_form_data"
            params.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()})
        return params, None

    def _serve(self) -> None:
        st = self.server.state
        if urlsplit(self.path).path.startswith(RESPONSE_PATH):
            self._respond_url(st)
            return
        method = urlsplit(self.path).path.rsplit("/", 1)[-1]
        params, parse_error = self._params()
        with st.lock:
            fault = st.faults.popleft() if st.faults else None
        if fault is not None and fault.kind == "hang":
            if st.stopping.wait(fault.seconds):
                return
        elif fault is not None:
            rate = fault.kind == "ratelimit"
            status = 429 if rate else fault.status
            with st.lock:
                st.calls.append(Call(method, params, status, False, "ratelimited" if rate else f"http_{status}"))
            if rate:
                self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)})
            else:
                self._send(status, f"<html><body><h1>{status} Server Error</h1></body></html>")
            return
        with st.lock:
            result = self._dispatch(st, method, params, parse_error)
            st.calls.append(Call(method, params, 200, bool(result.get("ok")), result.get("error")))
        self._send(200, result)

    def _respond_url(self, st: _State) -> None:
        """A click's response_url: a JSON message (replace_original / response_type), answered `ok` as Slack does."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            doc = json.loads(raw)
        except ValueError:
            self._send(400, "invalid_payload")
            return
        if not isinstance(doc, dict) or not (doc.get("text") or doc.get("blocks")):
            self._send(400, "no_text")
            return
        with st.lock:
            st.responses.append({"path": urlsplit(self.path).path, **doc})
        self._send(200, "ok")

    def _dispatch(self, st: _State, method: str, params: dict[str, Any], parse_error: str | None) -> dict[str, Any]:
        if parse_error:
            return {"ok": False, "error": parse_error}
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else params.get("token")
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token != st.token:
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "recovery-bot",
                    "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT"}  # fmt: skip
        if method not in ("chat.postMessage", "chat.update", "conversations.info"):
            return {"ok": False, "error": "unknown_method"}
        ref = str(params.get("channel") or "")
        by_name = {n: cid for cid, n in st.channels.items()}
        cid = ref if ref in st.channels else (None if method == "chat.update" else by_name.get(ref.lstrip("#")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": cid, "name": st.channels[cid], "is_channel": True}}
        text = params.get("text")
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return {"ok": False, "error": "invalid_blocks_format"}
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        if blocks is not None:
            errs = _block_errors(blocks)
            if errs:
                return {"ok": False, "error": "invalid_blocks", "errors": errs}
        msgs = st.messages.setdefault(cid, [])
        if method == "chat.update":
            ts = str(params.get("ts") or "")
            for m in msgs:
                if m["ts"] == ts:
                    m.update(text=text or "", blocks=blocks, edited=m.get("edited", 0) + 1)
                    return {"ok": True, "channel": cid, "ts": ts, "text": m["text"], "message": copy.deepcopy(m)}
            return {"ok": False, "error": "message_not_found"}
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None and not any(m["ts"] == thread_ts for m in msgs):
            return {"ok": False, "error": "thread_not_found"}
        st.seq += 1
        ts = f"{int(time.time())}.{st.seq:06d}"
        msg = {"ts": ts, "text": text or "", "blocks": blocks, "thread_ts": thread_ts, "user": "U0BOT", "edited": 0}
        msgs.append(msg)
        return {"ok": True, "channel": cid, "ts": ts, "message": copy.deepcopy(msg)}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class FakeSlackServer:
    """Start with `with FakeSlackServer() as slack:`; `slack.url` is the WebClient base_url."""

    def __init__(self, token: str = DEFAULT_TOKEN, channels: dict[str, str] | None = None) -> None:
        self.token = token
        self._state = _State(token=token, channels=dict(channels or {"C0INCIDENTS": "incidents"}))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FakeSlackServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self._state
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlackServer is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    @property
    def response_url_root(self) -> str:
        """Prefix of the response URLs this server answers (what Slack puts in a click's `response_url`)."""
        return self.url.removesuffix("api/") + RESPONSE_PATH.strip("/") + "/"

    @property
    def responses(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return copy.deepcopy(self._state.responses)

    # channels
    @property
    def channel_id(self) -> str:
        """The first configured channel's id (the default `incidents` channel)."""
        return next(iter(self._state.channels))

    def add_channel(self, cid: str, name: str) -> None:
        with self._state.lock:
            self._state.channels[cid] = name

    # fault injection: each fault applies to one of the next requests, in the order added
    def fail_next(self, n: int, status: int = 500) -> None:
        self._add(n, _Fault("fail", status=status))

    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        self._add(n, _Fault("ratelimit", retry_after=retry_after))

    def hang_next(self, n: int, seconds: float) -> None:
        """Hold each of the next n requests for `seconds`, then answer normally (unless stopping)."""
        self._add(n, _Fault("hang", seconds=seconds))

    def _add(self, n: int, fault: _Fault) -> None:
        with self._state.lock:
            self._state.faults.extend(copy.copy(fault) for _ in range(n))

    # inspection
    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """All messages of a channel (id or name; default channel if None), replies included, oldest first."""
        ref = channel or self.channel_id
        with self._state.lock:
            by_name = {n: cid for cid, n in self._state.channels.items()}
            cid = ref if ref in self._state.channels else by_name.get(ref.lstrip("#"), ref)
            return copy.deepcopy(self._state.messages.get(cid, []))

    def replies(self, thread_ts: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m["thread_ts"] == thread_ts]

    @property
    def calls(self) -> list[Call]:
        with self._state.lock:
            return list(self._state.calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]
