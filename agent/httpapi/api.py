"""`HttpApi`: the local HTTP API as a service (start / stop / alive), and who it is to its clients: the names and
origins it answers to, and the token a caller from another address must show."""

from __future__ import annotations

import hmac
import socket
import threading
from typing import TYPE_CHECKING

from agent.httpapi.guard import Origins
from agent.httpapi.handler import Handler
from agent.httpapi.limits import is_loopback
from agent.httpapi.server import ApiServer
from agent.httpapi.sse import event_slots

if TYPE_CHECKING:
    from agent.core import Agent


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class HttpApi:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        cfg = agent.config.http
        self.stopping = threading.Event()
        self.event_slots = event_slots()
        self._server = ApiServer((cfg.host, cfg.port), Handler, self)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        if not cfg.public_url:
            host = cfg.host if cfg.host not in ("0.0.0.0", "::") else socket.gethostname()
            agent.served_at = f"http://{_url_host(host)}:{self.port}"
        # names a browser may use for us; any other name is a DNS-rebinding attempt (IP literals are always fine)
        hostname = socket.gethostname().lower()
        names = {"localhost", cfg.host, hostname, hostname + ".local"}
        self.origins = Origins(names, self.port, cfg.public_url)

    @property
    def _token(self) -> str | None:
        """The API token of the current config (read per request: a reload may change it)."""
        token = self.agent.secrets.http_token
        return token.get_secret_value() if token else None

    @property
    def url(self) -> str:
        host = self.agent.config.http.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{_url_host(host)}:{self.port}"

    @property
    def usage(self) -> dict[str, int]:
        """Connections and event streams open now (for status pages and tests)."""
        return {"connections": self._server.slots.in_use, "event_streams": self.event_slots.in_use}

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
        self.stopping.set()
        if self._thread is not None:  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def known_host(self, host_header: str | None) -> bool:
        return self.origins.known_host(host_header)

    def authorized(self, client_ip: str, header: str | None, *, proxied: bool = False) -> bool:
        """Loopback callers (IPv4-mapped ones included) need no token; others show `Bearer <http token>`. A request
        that came through a proxy on this device (it says whom it forwards for) is not the device itself."""
        if is_loopback(client_ip) and not proxied:
            return True
        if not self._token or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self._token.encode())
