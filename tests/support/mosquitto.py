"""A real Mosquitto broker for tests, plus a small TCP proxy to misbehave in front of it.

``Mosquitto(tmp_path)`` writes its own config (one loopback listener on a free port, persistence in
``tmp_path``) and runs ``mosquitto -c`` as a child process. ``stop()`` sends SIGTERM, so the broker saves
persistent sessions, their subscriptions and queued QoS 1 messages; ``start()`` brings it back on the same port;
``kill()`` is SIGKILL (nothing saved since the last start). A missing binary is an error, never a skip.

``TcpProxy(target_port)`` forwards loopback TCP connections; ``refuse_mqtt5=True`` makes it answer an MQTT 5
CONNECT the way a 3.1.1-only broker does (CONNACK "unacceptable protocol version", then close), which is how the
3.1.1 fallback is exercised against a real broker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

_SEARCH = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")


def _find(binary: str) -> str:
    found = shutil.which(binary)
    if found:
        return found
    for d in _SEARCH:
        p = Path(d) / binary
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise RuntimeError(
        f"{binary} not found (looked in PATH and {', '.join(_SEARCH)}); install it: apt-get install mosquitto "
        "(./scripts/test.sh does this)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    def __init__(
        self,
        tmp_path: str | os.PathLike,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        start: bool = True,
    ) -> None:
        """`users`: {name: password} -> a password file and no anonymous access.
        `tls`: (ca_file, cert_file, key_file) -> the listener speaks TLS only."""
        self.binary = _find("mosquitto")
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.log_file = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.dir}/",
            "persistence_file mosquitto.db",
            "autosave_interval 0",  # saved on SIGTERM only: kill() really loses what was not saved
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "max_queued_messages 10000",
            "set_tcp_nodelay true",  # small request/response packets: no Nagle delays in tests
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, who cannot write into tmp_path
        if users:
            pw_file = self.dir / "passwords"
            pw_file.write_text("")
            tool = _find("mosquitto_passwd")
            for name, password in users.items():
                subprocess.run([tool, "-b", str(pw_file), name, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw_file}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        self.conf.write_text("\n".join(lines) + "\n")
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if self.running:
            return self
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}\n{self.log_tail()}")
            if _accepts(self.port):
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not accept on port {self.port} within {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: a clean shutdown that writes the persistence file."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes; nothing is saved."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    def _end(self, sig: int, timeout: float) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        # the listener is gone once the process is: wait until the port refuses, so a restart really is one
        deadline = time.monotonic() + 5
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (openssl CLI). -> (ca, cert, key)"""
    openssl = _find("openssl")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert, ext = (
        d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "server.ext")
    )

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=edge-agent test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )
    return ca, cert, key


class TcpProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port>, one pair of threads per connection."""

    def __init__(self, target_port: int, *, refuse_mqtt5: bool = False) -> None:
        self.target_port = target_port
        self.refuse_mqtt5 = refuse_mqtt5
        self.refused = 0  # MQTT 5 CONNECTs answered with "unacceptable protocol version"
        self.connections = 0  # connections forwarded to the target
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self.port = self._srv.getsockname()[1]
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        try:
            first = self._read_packet(client) if self.refuse_mqtt5 else b""
            if first and self._is_mqtt5_connect(first):
                self.refused += 1
                client.sendall(bytes([0x20, 0x02, 0x00, 0x01]))  # 3.1.1 CONNACK: unacceptable protocol version
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            upstream.settimeout(None)
            self._track(upstream)
            self.connections += 1
            if first:
                upstream.sendall(first)
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
            self._pipe(client, upstream)
        except OSError:
            self._close(client)

    @staticmethod
    def _read_packet(sock: socket.socket) -> bytes:
        """One whole MQTT packet (fixed header, remaining length, body)."""
        head = sock.recv(1)
        if not head:
            return b""
        length_bytes = b""
        mult, length = 1, 0
        while True:
            b = sock.recv(1)
            if not b:
                return b""
            length_bytes += b
            length += (b[0] & 0x7F) * mult
            mult *= 128
            if not b[0] & 0x80 or len(length_bytes) >= 4:
                break
        body = b""
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                return b""
            body += chunk
        return head + length_bytes + body

    @staticmethod
    def _is_mqtt5_connect(packet: bytes) -> bool:
        if not packet or packet[0] >> 4 != 1:
            return False
        i = 1
        while packet[i] & 0x80:
            i += 1
        body = packet[i + 1 :]
        name_len = int.from_bytes(body[0:2], "big")
        return len(body) > 2 + name_len and body[2 + name_len] == 5

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._close(src)
        self._close(dst)

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.discard(s)
        try:
            s.close()
        except OSError:
            pass

    def cut(self) -> None:
        """Abort every forwarded connection with a TCP reset (no MQTT DISCONNECT reaches anyone)."""
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self._close(s)

    def close(self) -> None:
        self._closed = True
        self._srv.close()
        self.cut()
