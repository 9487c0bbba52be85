"""Log lines cannot be forged: what a sender (an MQTT request_id, a topic) or a platform (an error message) writes
never starts a new line in the daemon's log. Against a real `edge-agent run`, a real Mosquitto and a hostile
platform over real HTTP on loopback."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support.configs import TEST_KEY, base_config, write_config
from tests.support.daemon import DaemonProcess
from tests.support.mqtt import Watcher, reply_props, response_to
from tests.support.proc import wait_until

pytest_plugins = ("tests.support.mqtt_fixtures",)

FORGED = "ERROR agent.core: FORGED"  # what a forged record would look like (the systemd format has no time)
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]  # all of them end a line somewhere


class _Hostile(BaseHTTPRequestHandler):
    """Every request is refused with an error message that tries to start log lines of its own."""

    message = "no".join(b + FORGED for b in BREAKS)

    def _refuse(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": {"message": self.message}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *_a: object) -> None:
        pass


@pytest.fixture
def hostile_url() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def forged_lines(text: str) -> list[str]:
    """Lines (split the way Python's own tools split them) that begin with the forged record."""
    return [line for line in text.splitlines() if re.match(r"^(\S+ \S+ )?ERROR agent\.core: FORGED", line)]


def test_a_request_id_a_topic_or_a_platform_message_cannot_forge_log_lines(tmp_path, broker, hostile_url) -> None:
    raw = base_config(tmp_path, hostile_url)
    raw["mqtt"] = {"enabled": True, "port": broker.port, "topic_prefix": "logs"}
    B = "logs/test-booth"
    daemon = DaemonProcess(write_config(tmp_path / "config.toml", raw), tmp_path / "daemon.log")
    w = Watcher(broker.port, [f"{B}/response/+", f"{B}/events"])
    daemon.start()
    try:
        # commands sent before the bridge has subscribed would be lost (a first connection has no session yet)
        wait_until(
            lambda: httpx.get(f"{daemon.url}/api/state", timeout=5).json().get("mqtt") == "connected",
            20,
            what="the daemon's MQTT bridge",
        )
        for i, brk in enumerate(BREAKS):  # a request_id with a line break in it
            w.publish(f"{B}/cmd/capture", {"request_id": f"r{i}{brk}{FORGED} by a request_id"})
        # a Response Topic outside the allowed prefix is refused and logged (Mosquitto refuses C0/C1 in topics)
        w.publish(
            f"{B}/cmd/cancel",
            {"request_id": "topic-1"},
            props=reply_props(b"c", f"zigbee2mqtt/front_door/set\u2028{FORGED} by a topic"),
        )
        response_to(w, B, "topic-1", action="cancel")
        w.publish(f"{B}/cmd/capture", {"request_id": "platform-1"})  # the hostile platform refuses it
        job_id = response_to(w, B, "platform-1")["data"]["job_id"]
        w.wait(lambda m: m.topic == f"{B}/events" and (m.json()["type"], m.json()["job_id"]) == ("job.failed", job_id))
    finally:
        w.close()
        daemon.stop()
    log = daemon.log_text()
    assert "FORGED" in log  # the texts were logged ...
    assert forged_lines(log) == [], forged_lines(log)  # ... and none of them started a line
    assert "\\u2028ERROR agent.core: FORGED by a topic" in log  # the refused topic is logged, escaped
    assert log.count("failed: HTTP 400 from 127.0.0.1") == 1  # the platform's words are logged, on one line
    assert TEST_KEY not in log


def test_every_record_is_one_line_with_its_secrets_masked() -> None:
    from agent.logs import SafeLogRecords

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SafeLogRecords(["sk-secret-123456"]))
    logger = logging.getLogger("test.safe_records")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("job %s failed: %s", "j1\n" + FORGED, "key sk-secret-123456\u2028" + FORGED)
        logger.warning("a message\r\n" + FORGED + " with %d arg", 1)
        try:
            raise ValueError("bad\n" + FORGED + " from an exception, key sk-secret-123456")
        except ValueError:
            logger.exception("handling %s", "x\x1b[2J\x85y")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert forged_lines(text) == [] and "sk-secret-123456" not in text
    records = [line for line in text.splitlines() if not line.startswith(" ")]
    assert [r.split(":")[0] for r in records] == ["WARNING test.safe_records"] * 2 + ["ERROR test.safe_records"]
    assert "j1\\nERROR agent.core: FORGED" in text and "***\\u2028ERROR" in text and "\\r\\nERROR" in text
    assert "x\\x1b[2J\\x85y" in text  # a terminal escape sequence is shown, not run
    assert "  ValueError: bad" in text and "\n  ERROR agent.core: FORGED from an exception, key ***" in text


def test_escape_controls() -> None:
    from agent.logs import escape_controls

    assert escape_controls("a\nb\rc\td\x00e\x7f\x9f\u2028\u2029") == "a\\nb\\rc\\td\\x00e\\x7f\\x9f\\u2028\\u2029"
    assert escape_controls("plain text, ünïcödé, 写真, C:\\path") == "plain text, ünïcödé, 写真, C:\\path"


def test_a_request_id_with_control_characters_is_refused(tmp_path: Path) -> None:
    from agent.mqtt import Rejected, parse_command

    for brk in BREAKS + ["\x00", "\x1b", "\t"]:
        with pytest.raises(Rejected) as e:
            parse_command("capture", json.dumps({"request_id": f"r{brk}x"}).encode())
        assert e.value.code == "bad_request" and "control characters" in e.value.message
    assert parse_command("capture", json.dumps({"request_id": "ok-1 ünï 写真"}).encode()).request_id == "ok-1 ünï 写真"
