"""The routes of the local HTTP API. Requests are checked (guard.py), turned into Commands and handed to the core;
the handler thread only waits for the command's future."""

from __future__ import annotations

import io
import json
import logging
import math
import mimetypes
import os
import re
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from agent.commands import ACTIONS, Command, CommandError
from agent.httpapi import guard, profiles
from agent.httpapi.files import open_result
from agent.httpapi.limits import SEND_TIMEOUT_S, client_key, is_own_client
from agent.httpapi.preview import serve_preview
from agent.httpapi.profiles import profiles_view
from agent.httpapi.server import DeadlineReader
from agent.httpapi.sse import serve_events
from agent.jobs.model import Job, JobState
from agent.kiosk.routes import handle_get as kiosk_get
from agent.kiosk.share import share_url
from agent.printing.requests import print_command

if TYPE_CHECKING:
    from agent.httpapi.api import HttpApi
    from agent.httpapi.server import ApiServer

log = logging.getLogger(__name__)
COMMAND_TIMEOUT_S = 30.0
REFUSAL_RETRY_S = 5.0  # Retry-After of a 429/503 refusal that does not know better (the queue is full)
# full job ids only (a UUID, any case): a 4-hex prefix could be brute-forced (the CLI's `queue` takes prefixes)
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_JOB_ROUTE = re.compile(rf"^/api/jobs/(?:({_UUID})|([^/]*))(?:/(cancel|retry|print))?$")
_RESULT_ROUTE = re.compile(rf"^/results/({_UUID})/([A-Za-z0-9_.-]{{1,64}})$")
_RESULT_CSP = "default-src 'none'; img-src 'self'; media-src 'self'"


def job_view(job: Job, share_base: str | None = None) -> dict[str, Any]:
    d = job.public()
    d["outputs"] = [{k: v for k, v in o.items() if v is not None} for o in d["outputs"]]
    d["share_url"] = share_url(job, share_base) if share_base else None  # the kiosk's QR code (agent/kiosk)
    return d


class Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server_version = "edge-agent"
    sys_version = ""

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("http %s - %s", self.client_address[0], fmt % args)

    # ---------------------------------------------------------------------------------------- connection

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(SEND_TIMEOUT_S)
        self.reader = DeadlineReader(self.connection)
        plain, self.rfile = self.rfile, io.BufferedReader(self.reader)
        plain.close()  # drop the stdlib's reader (it holds a reference that keeps the socket open)
        self.client = client_key(self.client_address[0])
        self.own_client = is_own_client(self.client_address[0], self.connection.getsockname()[0])
        self._answered = False
        self.body_length = 0

    def handle_one_request(self) -> None:
        if self._answered:
            self.reader.next_request()
        self._answered = True
        self.body_length = 0
        super().handle_one_request()

    def parse_request(self) -> bool:
        """The stdlib's parsing, then framing every route relies on (one plain Content-Length, no chunks)."""
        if not super().parse_request():
            return False
        if self.reader.eof:  # the header block ended with the connection, not with an empty line
            self.close_connection = True
            return False
        try:
            self.body_length = guard.body_length(self.command, self.headers)
        except guard.Refused as r:
            self._refuse(r)
            return False
        return True

    @property
    def proxied(self) -> bool:
        """A reverse proxy forwarded this request (it names the real client): never trusted as loopback."""
        return any(h in self.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP"))

    @property
    def api(self) -> HttpApi:
        return self.server.api

    # ---------------------------------------------------------------------------------------- answers

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error_json(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"code": code, "message": message}}, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (bad request line, too many headers, unknown method) as JSON, closing."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.send_error_json(code, "bad_request", message or phrase)

    def _refuse(self, r: guard.Refused) -> None:
        if r.close or self.body_length:  # a body left unread must never be taken for the next request
            self.close_connection = True
        self.send_error_json(r.status, r.code, r.message)

    def _guard(self) -> bool:
        """Host and Origin are this device's; a caller from another address shows the token."""
        try:
            guard.check_host_and_origin(self.api.origins, self.headers)
        except guard.Refused as r:
            self._refuse(r)
            return False
        if self.proxied:
            self.own_client = False  # a phone behind a reverse proxy on the booth: a guest of the API, not the booth
        if self.api.authorized(self.client_address[0], self.headers.get("Authorization"), proxied=self.proxied):
            return True
        self.close_connection = self.close_connection or bool(self.body_length)
        self.send_error_json(
            401,
            "unauthorized",
            "a bearer token is required from this address",
            headers={"WWW-Authenticate": 'Bearer realm="edge-agent"'},
        )
        return False

    def _read_body(self) -> dict[str, Any] | None:
        """A state-changing request's JSON object, after its same-origin proof; None once refused."""
        try:
            guard.check_same_origin_proof(self.headers)
        except guard.Refused as r:
            self._refuse(r)
            return None
        raw = self.rfile.read(self.body_length) if self.body_length else b""
        if len(raw) < self.body_length:
            self.close_connection = True  # the client closed early: nothing to answer
            return None
        self.body_length = 0  # read: the connection may carry the next request
        try:
            return guard.parse_body(raw)
        except guard.Refused as r:
            self._refuse(r)
            return None

    def _run(self, cmd: Command, ok_status: int = 200) -> None:
        fut = self.api.agent.request(cmd)
        try:
            result = fut.result(timeout=COMMAND_TIMEOUT_S)
        except CommandError as e:
            # a refusal for now (429, 503) says when to try again, as the connection-level refusals do
            wait = e.retry_after if e.retry_after is not None else REFUSAL_RETRY_S
            later = None
            if e.retry_after is not None or e.http_status in (429, 503):
                later = {"Retry-After": str(max(1, math.ceil(wait)))}
            self.send_error_json(e.http_status, e.code, e.message, later)
            return
        except FutureTimeout:
            self.send_error_json(504, "timeout", "the agent did not answer in time")
            return
        except CancelledError:  # the agent is stopping
            self.send_error_json(503, "unavailable", "the agent is stopping")
            return
        self._send_json(ok_status, result)

    @property
    def _share_base(self) -> str | None:
        """Where share links point (None: [display] share is off)."""
        return self.api.agent.public_base if self.api.agent.config.display.share else None

    # ---------------------------------------------------------------------------------------- routes

    def do_OPTIONS(self) -> None:
        """CORS preflights are never granted: no Access-Control-* header is ever sent, so a cross-site page
        cannot send the same-origin proof header."""
        self.send_error_json(405, "bad_request", "no cross-origin requests", headers={"Allow": "GET, HEAD, POST"})

    def do_HEAD(self) -> None:
        if urlsplit(self.path).path == "/api/events":
            if self._guard():
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", "0")
                self.end_headers()
            return
        self.do_GET()

    def do_GET(self) -> None:
        if kiosk_get(self, urlsplit(self.path).path):  # the page, its files, share links, /status (agent/kiosk)
            return
        if not self._guard():
            return
        url = urlsplit(self.path)
        path = url.path
        agent = self.api.agent
        if path == "/api/state":
            self._send_json(200, agent.state())
        elif path == "/api/events":
            serve_events(self)
        elif path == "/api/profiles":
            self._send_json(200, profiles_view(agent.config))
        elif m := profiles.ROUTE.match(path):
            profiles.serve_thumbnail(self, m.group(1), m.group(2))
        elif path in ("/api/preview.mjpg", "/api/preview.jpg"):
            serve_preview(self, path)
        elif path == "/api/jobs":
            self._list_jobs(parse_qs(url.query))
        elif path == "/api/stats":
            from agent.stats import report

            days = parse_qs(url.query).get("days", ["7"])[0]
            if not days.isdigit() or not 1 <= int(days) <= 366:
                self.send_error_json(400, "bad_request", "days must be a whole number from 1 to 366")
            else:
                self._send_json(200, report(agent.store.path, int(days)))
        elif m := _JOB_ROUTE.match(path):
            if m.group(3):
                self.send_error_json(405, "bad_request", "use POST")
            elif m.group(1) is None:
                self.send_error_json(404, "not_found", "no such job (give the full job id)")
            elif (job := agent.store.get(m.group(1).lower())) is None:
                self.send_error_json(404, "not_found", f"no job {m.group(1)}")
            else:
                self._send_json(200, job_view(job, self._share_base))
        elif m := _RESULT_ROUTE.match(path):
            self._serve_result(m.group(1).lower(), m.group(2))
        else:
            self.send_error_json(404, "not_found", f"no route {path}")

    def do_POST(self) -> None:
        if not self._guard():
            return
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path == "/api/capture":
            self._capture(body)
        elif path == "/api/reload":
            reload = self.api.agent.reloader
            if reload is None:
                self.send_error_json(503, "unavailable", "this agent was not started by `edge-agent run`")
            else:
                result = reload("api")
                self._send_json(200 if result.ok else 422, result.as_dict())
        elif (m := _JOB_ROUTE.match(path)) and m.group(3) == "print" and m.group(1):
            self._run(print_command(body, m.group(1).lower(), own_client=self.own_client), ok_status=202)
        elif (m := _JOB_ROUTE.match(path)) and m.group(3) in ACTIONS:
            if m.group(1) is None:
                self.send_error_json(404, "not_found", "no such job (give the full job id)")
                return
            self._run(Command(m.group(3), "http", job_id=m.group(1).lower()))  # type: ignore[arg-type]
        else:
            self.send_error_json(404, "not_found", f"no route POST {path}")

    def _capture(self, body: dict[str, Any]) -> None:
        profile = body.get("profile")
        if profile is not None and not isinstance(profile, str):
            self.send_error_json(400, "bad_request", "profile must be a string")
            return
        source = body.get("source", "http")
        if source not in ("http", "kiosk", "cli"):
            self.send_error_json(400, "bad_request", "source must be http, kiosk or cli")
            return
        if not self.own_client:
            source = "http"  # only the booth itself (its kiosk, its CLI) is a guest: others are rate-limited
        choice = body.get("choice")
        if choice is not None and not isinstance(choice, str):
            self.send_error_json(400, "bad_request", "choice must be a choice id (string)")
            return
        request_id = body.get("request_id")
        cmd = Command(
            "capture",
            source,
            profile=profile,
            choice=choice,
            params=body.get("params") or {},
            request_id=request_id if isinstance(request_id, str) else None,
        )
        self._run(cmd, ok_status=202)

    def _list_jobs(self, q: dict[str, list[str]]) -> None:
        states = None
        if "state" in q:
            try:
                states = [JobState(s) for s in q["state"][0].split(",")]
            except ValueError:
                self.send_error_json(400, "bad_request", "unknown state")
                return
        raw = q.get("limit", ["50"])[0]
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            self.send_error_json(400, "bad_request", f"limit must be a whole number from 1 to 500, got {raw[:20]!r}")
            return
        limit = int(raw)
        jobs = self.api.agent.store.list(states, limit=limit)
        self._send_json(200, {"jobs": [job_view(j, self._share_base) for j in jobs]})

    def _serve_result(self, job_id: str, name: str) -> None:
        agent = self.api.agent
        job = agent.store.get(job_id)
        opened = open_result(agent.layout, job, name) if job else None
        if opened is None:
            self.send_error_json(404, "not_found", "no such result")
            return
        fd, size = opened
        with os.fdopen(fd, "rb") as f:
            self.send_response(200)
            self.send_header("Content-Type", mimetypes.guess_type(name)[0] or "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "private, max-age=3600")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", _RESULT_CSP)
            self.end_headers()
            if self.command == "HEAD":
                return
            left = size  # what was announced, even if the file grew meanwhile
            while left > 0 and (chunk := f.read(min(64 * 1024, left))):
                self.wfile.write(chunk)
                left -= len(chunk)
            if left:
                self.close_connection = True  # the file shrank: the client must not wait for the rest
