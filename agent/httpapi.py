"""The local HTTP API (and later the kiosk page): a small threaded stdlib server, light enough for a Pi Zero.

Requests are validated here and handed to the core as Commands; the handler thread only waits for the
command's future. Bound to loopback by default; a request from any other address needs
``Authorization: Bearer <token>`` (``[http] token_file``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import mimetypes
import re
import socket
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.commands import ACTIONS, Command, CommandError
from agent.core import Agent
from agent.jobs.model import Job, JobState
from agent.jsonutil import JSONError, loads_strict

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 32
SOCKET_TIMEOUT_S = 20.0  # a client that sends or reads nothing for this long is dropped (slowloris)
COMMAND_TIMEOUT_S = 30.0
SSE_KEEPALIVE_S = 10.0  # well inside SOCKET_TIMEOUT_S
_JOB_ROUTE = re.compile(r"^/api/jobs/([0-9a-fA-F-]{4,36})(?:/(cancel|retry|print))?$")
_RESULT_ROUTE = re.compile(r"^/results/([0-9a-fA-F-]{36})/([A-Za-z0-9_.-]{1,64})$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32

    def __init__(self, addr: tuple[str, int], handler: type, api: HttpApi) -> None:
        self.api = api
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """At most MAX_CONNECTIONS at once (a Pi has little memory for threads); the rest get a quick 503."""
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class HttpApi:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        cfg = agent.config.http
        token = agent.secrets.http_token
        self._token = token.get_secret_value() if token else None
        self._server = _Server((cfg.host, cfg.port), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        if not cfg.public_url:
            host = cfg.host if cfg.host not in ("0.0.0.0", "::") else socket.gethostname()
            agent.served_at = f"http://{host}:{self.port}"
        # names a browser may use for us; any other name is a DNS-rebinding attempt (IP literals are always fine)
        self.host_names = {
            "localhost",
            cfg.host.lower(),
            socket.gethostname().lower(),
            socket.gethostname().lower() + ".local",
        }
        if cfg.public_url:
            self.host_names.add((urlsplit(cfg.public_url).hostname or "").lower())

    @property
    def url(self) -> str:
        host = self.agent.config.http.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        # a short poll interval: stop() waits for the loop's next look (0.5 s by default, at every stop)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def known_host(self, host_header: str | None) -> bool:
        if not host_header:
            return True  # HTTP/1.0 without Host: not a browser
        host = urlsplit(f"//{host_header}").hostname or ""
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return host.lower() in self.host_names

    def authorized(self, client_ip: str, header: str | None) -> bool:
        try:
            if ipaddress.ip_address(client_ip.split("%")[0]).is_loopback:
                return True
        except ValueError:
            pass
        if not self._token or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self._token.encode())


def job_view(job: Job) -> dict[str, Any]:
    d = job.public()
    d["outputs"] = [{k: v for k, v in o.items() if v is not None} for o in d["outputs"]]
    return d


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    server_version = "edge-agent"
    sys_version = ""

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("http %s - %s", self.client_address[0], fmt % args)

    # ---------------------------------------------------------------------------------------- plumbing

    @property
    def api(self) -> HttpApi:
        return self.server.api

    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send_json(status, {"error": {"code": code, "message": message}})

    def _read_json(self) -> dict[str, Any] | None:
        """The request's JSON object; None after answering with an error (and nothing else happens)."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # the unread chunks must not be taken for a next request
            self._error(411, "bad_request", "chunked bodies are not accepted: send Content-Length")
            return None
        length = self.headers.get("Content-Length")
        if not length:
            return {}
        try:
            n = int(length)
        except ValueError:
            n = -1
        if n < 0:
            self.close_connection = True
            self._error(400, "bad_request", "bad Content-Length")
            return None
        if n > MAX_BODY:
            self.close_connection = True
            self._error(413, "bad_request", f"body larger than {MAX_BODY} bytes")
            return None
        raw = self.rfile.read(n)
        if not raw.strip():
            return {}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":  # also keeps plain cross-site form posts out
            self._error(415, "bad_request", "send the body as Content-Type: application/json")
            return None
        try:
            body = loads_strict(raw)
        except JSONError:
            self._error(400, "bad_request", "body is not valid JSON")
            return None
        if not isinstance(body, dict):
            self._error(400, "bad_request", "body must be a JSON object")
            return None
        return body

    def _guard(self) -> bool:
        origin = self.headers.get("Origin")
        if not self.api.known_host(self.headers.get("Host")) or (
            origin is not None and origin != "null" and not self.api.known_host(urlsplit(origin).netloc)
        ):
            self.close_connection = True
            self._error(403, "forbidden", "unexpected Host or Origin (cross-site or DNS-rebinding request)")
            return False
        if self.api.authorized(self.client_address[0], self.headers.get("Authorization")):
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Bearer realm="edge-agent"')
        self.send_header("Content-Type", "application/json")
        body = b'{"error":{"code":"unauthorized","message":"a bearer token is required from this address"}}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def _run(self, cmd: Command, ok_status: int = 200) -> None:
        fut = self.api.agent.request(cmd)
        try:
            result = fut.result(timeout=COMMAND_TIMEOUT_S)
        except CommandError as e:
            self._error(e.http_status, e.code, e.message)
            return
        except FutureTimeout:
            self._error(504, "timeout", "the agent did not answer in time")
            return
        self._send_json(ok_status, result)

    # ---------------------------------------------------------------------------------------- routes

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
        if not self._guard():
            return
        url = urlsplit(self.path)
        path = url.path
        agent = self.api.agent
        if path == "/api/state":
            self._send_json(200, agent.state())
        elif path == "/api/events":
            self._sse()
        elif path == "/api/jobs":
            q = parse_qs(url.query)
            states = None
            if "state" in q:
                try:
                    states = [JobState(s) for s in q["state"][0].split(",")]
                except ValueError:
                    self._error(400, "bad_request", "unknown state")
                    return
            try:
                limit = max(1, min(500, int(q.get("limit", ["50"])[0])))
            except ValueError:
                limit = 50
            self._send_json(200, {"jobs": [job_view(j) for j in agent.store.list(states, limit=limit)]})
        elif m := _JOB_ROUTE.match(path):
            if m.group(2):
                self._error(405, "bad_request", "use POST")
                return
            job = agent.store.get(m.group(1))
            if job is None:
                self._error(404, "not_found", f"no job {m.group(1)}")
            else:
                self._send_json(200, job_view(job))
        elif m := _RESULT_ROUTE.match(path):
            self._serve_result(m.group(1), m.group(2))
        else:
            self._error(404, "not_found", f"no route {path}")

    def do_POST(self) -> None:
        if not self._guard():
            return
        path = urlsplit(self.path).path
        body = self._read_json()
        if body is None:
            return
        if path == "/api/capture":
            profile = body.get("profile")
            if profile is not None and not isinstance(profile, str):
                self._error(400, "bad_request", "profile must be a string")
                return
            source = body.get("source", "http")
            if source not in ("http", "kiosk", "cli"):
                self._error(400, "bad_request", "source must be http, kiosk or cli")
                return
            params = body.get("params") or {}
            self._run(
                Command(
                    "capture",
                    source,
                    profile=profile,
                    params=params,
                    request_id=body.get("request_id") if isinstance(body.get("request_id"), str) else None,
                ),
                ok_status=202,
            )
        elif (m := _JOB_ROUTE.match(path)) and m.group(2) in ACTIONS:
            self._run(Command(m.group(2), "http", job_id=m.group(1)))  # type: ignore[arg-type]
        else:
            self._error(404, "not_found", f"no route POST {path}")

    def _serve_result(self, job_id: str, name: str) -> None:
        agent = self.api.agent
        job = agent.store.get(job_id)
        path = agent.layout.find_file(job, name) if job else None
        if path is None:
            self._error(404, "not_found", "no such result")
            return
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "private, max-age=3600")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; img-src 'self'; media-src 'self'")
        self.end_headers()
        if self.command == "HEAD":
            return
        with path.open("rb") as f:
            while chunk := f.read(64 * 1024):
                self.wfile.write(chunk)

    def _sse(self) -> None:
        """Server-Sent Events: every event of the bus, as `event: <type>` + JSON data."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        agent = self.api.agent
        with agent.events.subscribe(maxsize=512) as sub:
            try:
                self._sse_write("agent.state", agent.state())
                last = time.monotonic()
                while not self.api._stopping.is_set():
                    ev = sub.get(timeout=1.0)
                    if ev is None:
                        if time.monotonic() - last > SSE_KEEPALIVE_S:
                            self.wfile.write(b": keepalive\n\n")
                            self.wfile.flush()
                            last = time.monotonic()
                        continue
                    data = agent.state() if ev.type == "agent.state" else ev.as_dict()
                    self._sse_write(ev.type, data, ev.seq)
                    last = time.monotonic()
            except (BrokenPipeError, ConnectionResetError, OSError):
                return

    def _sse_write(self, type_: str, data: dict[str, Any], seq: int | None = None) -> None:
        msg = f"event: {type_}\n" + (f"id: {seq}\n" if seq else "") + f"data: {json.dumps(data)}\n\n"
        self.wfile.write(msg.encode())
        self.wfile.flush()


__all__ = ["HttpApi"]
