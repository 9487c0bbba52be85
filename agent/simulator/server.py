"""`Simulator`: one stdlib HTTP server that speaks both platforms, plus file downloads and control routes.

Order of work for every request (the handler thread does all of it; nothing else runs in the background):
  1. normalise the path (`//` collapsed, trailing `/` dropped) and read the body (HTML 413 above
     max_upload_bytes: the body is drained first so the client reliably reads the 413);
  2. `/_sim/*` control routes and downloads (`/files/`, `/view`, `/api/view`) never fail on purpose;
  3. API routes: failure injection first (no work done, no task created), then the bearer check,
     then the platform handler (`easyai` / `haiyi` modules).
A handler exception is logged and answered with a 500 JSON; the server keeps serving.
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.simulator import easyai, haiyi
from agent.simulator.config import SimConfig
from agent.simulator.state import Board
from agent.simulator.transport import RequestHandler, SimServer, SimServer6
from agent.simulator.wire import (
    BadRequest,
    Reply,
    Request,
    base_url_from_host,
    html_reply,
    json_reply,
    nginx_page,
    normalise_path,
    object_store_error,
)

log = logging.getLogger("agent.simulator")

Handler = Callable[["Simulator", Request], Reply]

ROUTES: list[tuple[str, str, str, Handler]] = [
    # (method, pattern, platform, handler); {id} matches one path segment
    ("POST", "/v1/images/generations", "easyai", easyai.images_generations),
    ("POST", "/v1/images/edits", "easyai", easyai.images_edits),
    ("POST", "/v1/videos/generations", "easyai", easyai.videos_generations),
    ("POST", "/v1/ai/generations", "easyai", easyai.ai_generations),
    ("GET", "/v1/ai/result/{id}", "easyai", easyai.result),
    ("GET", "/v1/ai/cancel/{id}", "easyai", easyai.cancel),
    ("POST", "/openapi/v1/workflow/apps/run", "haiyi", haiyi.apps_run),
    ("GET", "/openapi/v1/workflow/apps/task/{id}", "haiyi", haiyi.task_status),
    ("GET", "/openapi/v1/workflow/cluster/all_active_clusters_status", "haiyi", haiyi.clusters),
    ("POST", "/openapi/v1/workflow/upload/file", "haiyi", haiyi.upload_file),
    ("POST", "/openapi/v1/file/upload", "haiyi", haiyi.file_upload),
    ("POST", "/openapi/v1/workflow/task/submit", "haiyi", haiyi.workflow_submit),
    ("GET", "/openapi/v1/workflow/task/{id}", "haiyi", haiyi.task_status),
    ("POST", "/openapi/v1/generate/image", "haiyi", haiyi.generate_image),
    ("GET", "/openapi/v1/generate/result/{id}", "haiyi", haiyi.generate_result),
]
_COMPILED = [
    (m, re.compile("^" + re.sub(r"\\\{id\\\}", r"(?P<id>[^/]+)", re.escape(p)) + "$"), plat, h)
    for m, p, plat, h in ROUTES
]

HTML_LINK_EXPIRED = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>链接已失效</title></head>\n'
    "<body><h1>链接已失效 / Link expired</h1><p>The link you followed has expired. Please request a new one.</p>"
    "</body></html>\n"
)


def _platform_of(path: str) -> str:
    return "haiyi" if path.startswith("/openapi/") else "easyai"


def _platform_error(platform: str, status: int, message: str) -> Reply:
    """An error in the platform's own shape. For Haiyi, 4xx validation answers are HTTP 200 with code != 0."""
    if platform == "haiyi":
        if status in (400, 404, 422) or status > 999:
            return haiyi.error(status, message)
        return haiyi.error(status, message, status)
    return easyai.error(status, message)


# --------------------------------------------------------------------------------------------------- failures


def injected_failure(kind: str, platform: str, cfg: SimConfig) -> Reply:
    """One of `failure_kinds`, answered before any work is done."""
    if kind == "code" and platform == "haiyi":
        return json_reply({"code": 10001, "msg": "system busy", "data": None})
    if kind in ("500", "code"):
        if platform == "haiyi":
            return json_reply({"code": 500, "msg": "internal server error", "data": None}, 500)
        return json_reply({"statusCode": 500, "message": "Internal server error"}, 500)
    if kind == "502html":
        return html_reply(502, nginx_page(502, "Bad Gateway"))
    if kind == "504html":
        return html_reply(504, nginx_page(504, "Gateway Time-out"))
    if kind == "503":
        if platform == "haiyi":
            return json_reply({"code": 503, "msg": "service unavailable", "data": None}, 503)
        return json_reply({"statusCode": 503, "message": "Service Unavailable"}, 503)
    if kind == "429":
        headers = {"Retry-After": f"{cfg.retry_after_s:g}"}
        if platform == "haiyi":
            return json_reply({"code": 429, "msg": "too many requests", "data": None}, 429, headers)
        return json_reply({"statusCode": 429, "message": "ThrottlerException: Too Many Requests"}, 429, headers)
    if kind == "drop":
        return Reply(drop=True)
    if kind == "empty":
        return Reply(status=502, body=b"", content_type="")
    raise ValueError(kind)


class Simulator:
    """Both platforms on one port, in a background thread. See `agent.simulator` for the API."""

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self._cfg = cfg or SimConfig()
        self._lock = threading.Lock()
        self._workdir = Path(tempfile.mkdtemp(prefix="edge-agent-sim-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._workdir), True)
        self.board = Board(self._workdir, self._cfg.seed)
        self.stopping = threading.Event()  # set while stopped: sync handlers waiting for a GPU give up
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._started_at = 0.0

    # --------------------------------------------------------------------------------------- lifecycle

    def start(self) -> str:
        """Serve in a background thread; after stop(), re-bind the same port (tasks/files/record are kept)."""
        with self._lock:
            if self._server is not None:
                return self.url
            cfg = self._cfg
            port = cfg.port or self._port or 0
            cls = SimServer6 if ":" in cfg.host else SimServer
            server = cls((cfg.host, port), self)
            self._port = server.server_address[1]
            self._server = server
            self.stopping.clear()
            self._started_at = time.time()
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"simulator:{self._port}", daemon=True
            )
            self._thread.start()
            log.debug("simulator listening on %s", self.url)
            return self.url

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection. Never hangs."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            self.stopping.set()
            with self.board.changed:
                self.board.changed.notify_all()
            server.shutdown()
            server.server_close()
            server.close_connections()
            if thread is not None:
                thread.join(timeout=5)
            log.info("simulator on port %s stopped", self._port)

    def close(self) -> None:
        """stop() and delete the temporary files (the object is not usable afterwards)."""
        self.stop()
        self._cleanup()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def url(self) -> str:
        host = self._cfg.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}" if self._port else ""

    # --------------------------------------------------------------------------------------- config & state

    @property
    def cfg(self) -> SimConfig:
        return self._cfg

    def configure(self, **fields: Any) -> SimConfig:
        """Change SimConfig fields at runtime (thread-safe). host/port apply at the next start()."""
        with self._lock:
            new = self._cfg.replace(**fields)
            old, self._cfg = self._cfg, new
        if "seed" in fields and new.seed != old.seed:
            self.board.reseed(new.seed)
        if new.workers != old.workers:
            self.board.replan(new.workers)
        return new

    def record(self) -> list[dict[str, Any]]:
        return self.board.record()

    def tasks(self) -> list[dict[str, Any]]:
        return self.board.tasks()

    def received(self) -> list[dict[str, Any]]:
        """What each platform request brought, oldest first (fields, parts with picture sizes, JSON with data:
        URLs described, patched workflows; see inbox.py)."""
        return self.board.received()

    def requests(self) -> list[dict[str, Any]]:
        """Every platform API request served (method, path without query, ts), oldest first; downloads and
        /_sim/ routes are not included."""
        return self.board.requests()

    # --------------------------------------------------------------------------------------- dispatch

    def dispatch(self, h: RequestHandler, head: bool = False) -> Reply:
        cfg = self._cfg
        path, query = normalise_path(h.path)
        body = h.read_body(cfg.max_upload_bytes)
        if isinstance(body, Reply):
            return body
        method = "GET" if head else h.command
        req = Request(
            method=method,
            path=path,
            query=query,
            headers=h.headers,
            body=body,
            base_url=base_url_from_host(h.headers.get("Host"), self.url),
            cfg=cfg,
        )
        if path.startswith("/_sim/"):
            return self._control(req)
        if path.startswith("/files/") or path in ("/view", "/api/view"):
            return self._download(req) if method == "GET" else json_reply({"message": "method not allowed"}, 405)
        self.board.note_request(method, path)
        for m, pattern, platform, handler in _COMPILED:
            match = pattern.match(path)
            if match and m == method:
                req.params = match.groupdict()
                return self._api(req, platform, handler)
        platform = _platform_of(path)
        if platform == "haiyi":
            return haiyi.error(404, f"{method} {path} not found", 404)
        return easyai.error(404, f"Cannot {method} {path}")

    def _api(self, req: Request, platform: str, handler: Handler) -> Reply:
        cfg = req.cfg
        if self.board.roll(cfg.fail_rate) and cfg.failure_kinds:
            kind = self.board.choice(cfg.failure_kinds)
            log.debug("injecting failure %s on %s", kind, req.path)
            return injected_failure(kind, platform, cfg)
        token = req.bearer()
        if token is None or (cfg.api_keys and token not in cfg.api_keys):
            return _platform_error(platform, 401, "Unauthorized")
        try:
            return handler(self, req)
        except BadRequest as e:
            return _platform_error(platform, e.status, e.message)

    def _download(self, req: Request) -> Reply:
        if req.path.startswith("/files/"):
            m = re.fullmatch(r"/files/([0-9a-f]+)(\.[A-Za-z0-9]+)", req.path)
            f = self.board.files.file_by_token(m.group(1)) if m else None
            if m is None or f is None or f.ext != m.group(2):
                return object_store_error(404, "NoSuchKey", "The specified key does not exist.", req.path[7:])
            verdict = self.board.files.check_signature(req.path, req.q("expires"), req.q("sig"))
            if verdict == "expired":
                return object_store_error(403, "AccessDenied", "Request has expired", req.path[7:])
            if verdict != "ok":
                return object_store_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                    req.path[7:],
                )
        else:
            f = self.board.files.file_by_name(req.q("filename"))
            if f is None:
                return Reply(status=404, body=b"404: Not Found", content_type="text/plain; charset=utf-8")
        if not f.path.exists():  # evicted (MAX_FILES) since the lookup
            return object_store_error(404, "NoSuchKey", "The specified key does not exist.", f.name)
        if "html_download" in req.cfg.quirks:
            return html_reply(200, HTML_LINK_EXPIRED)
        ctype = "application/octet-stream" if "octet_stream" in req.cfg.quirks else f.content_type
        return Reply(
            status=200, file=f.path, content_type=ctype, headers={"Content-Disposition": f'inline; filename="{f.name}"'}
        )

    def _control(self, req: Request) -> Reply:
        if req.path == "/_sim/health" and req.method == "GET":
            return json_reply(
                {
                    "ok": True,
                    "url": self.url,
                    "uptime_s": round(time.time() - self._started_at, 3),
                    **self.board.counts(),
                }
            )
        if req.path == "/_sim/record" and req.method == "GET":
            return json_reply(self.record())
        if req.path == "/_sim/tasks" and req.method == "GET":
            return json_reply(self.tasks())
        if req.path == "/_sim/requests" and req.method == "GET":
            return json_reply(self.requests())
        if req.path == "/_sim/received" and req.method == "GET":
            return json_reply(self.received())
        if req.path == "/_sim/upload" and req.method == "POST":  # an owner's upload target (upload_url)
            try:
                return haiyi.file_upload(self, req, target=True)
            except BadRequest as e:
                return json_reply({"error": e.message}, 400)
        if req.path == "/_sim/config" and req.method == "GET":
            return json_reply(self._cfg.as_dict())
        if req.path == "/_sim/config" and req.method == "POST":
            try:
                changes = req.json_object()
                if {"host", "port"} & set(changes):
                    raise BadRequest("host and port cannot be changed over HTTP")
                new = self.configure(**changes)
            except BadRequest as e:
                return json_reply({"error": e.message}, 400)
            except (TypeError, ValueError) as e:
                return json_reply({"error": str(e)}, 400)
            return json_reply(new.as_dict())
        return json_reply({"error": f"no control route {req.method} {req.path}"}, 404)


def run_forever(cfg: SimConfig) -> None:
    """Start a simulator and block until SIGINT/SIGTERM (for `edge-agent simulate`)."""
    sim = Simulator(cfg)
    url = sim.start()
    print(f"simulator listening on {url}", flush=True)
    done = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sim.close()
