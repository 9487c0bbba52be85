"""Talking to the agent's HTTP API the way clients (and attackers) do: raw sockets from chosen loopback addresses.

Linux routes all of 127.0.0.0/8 to the loopback interface, so a socket bound to 127.0.0.10 stands for a guest's
phone or an attacker on the event network, while 127.0.0.1 (where a local process connects from) is the kiosk or
the CLI on the device itself. Nothing here ever leaves loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# the same-origin proof a cross-site page cannot send without a CORS preflight (which the agent never grants)
PROOF = {"X-Edge-Agent": "1"}


def connect(port: int, source: str = "127.0.0.1", *, host: str = "127.0.0.1", timeout: float = 10) -> socket.socket:
    """A TCP connection to the agent from the loopback address `source` (IPv4, or IPv4-mapped with host '::ffff:..')."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((host, port))
    return s


def read_all(s: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def raw_request(port: int, data: bytes, *, source: str = "127.0.0.1", host: str = "127.0.0.1") -> bytes:
    """Send `data`, half-close, read until the server closes: the whole reply."""
    with connect(port, source, host=host) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer (e.g. 503) and close before we finish sending: read its answer
        return read_all(s)


def status_of(reply: bytes) -> int:
    """The status code of a raw HTTP reply (0 when the server closed without answering)."""
    parts = reply.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def headers_of(reply: bytes) -> dict[str, str]:
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}


def post(
    port: int,
    path: str,
    body: bytes | None = b"{}",
    *,
    headers: dict[str, Any] | None = None,
    source: str = "127.0.0.1",
) -> bytes:
    """A raw POST with exactly the given headers (plus Host, Content-Length when there is a body, Connection)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    return raw_request(port, data, source=source)


@contextmanager
def api_booths() -> Iterator[Callable[[Path], tuple[Any, Any]]]:
    """start(config path) -> (agent, HttpApi): a started Agent with its local HTTP API on the config's (free
    loopback) port; every one started is stopped at the end."""
    from agent.config import load_config
    from agent.core import Agent
    from agent.httpapi import HttpApi

    made: list[tuple[Any, Any]] = []

    def start(cfg: Path) -> tuple[Any, Any]:
        agent = Agent(load_config(cfg))
        agent.start()
        api = HttpApi(agent)
        api.start()
        made.append((agent, api))
        return agent, api

    try:
        yield start
    finally:
        for agent, api in made:
            api.stop()
            agent.stop()
