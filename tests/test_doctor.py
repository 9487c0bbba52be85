"""`edge-agent doctor`: a PASS/WARN/FAIL table; exit 1 on any FAIL."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.proc import run_cli


def doctor(cfg, **env) -> tuple[int, dict[str, dict]]:
    r = run_cli("doctor", "-c", str(cfg), "--json", env=env)
    rows = {c["name"]: c for c in json.loads(r.stdout)}
    return r.returncode, rows


def test_healthy_setup_passes(config_file) -> None:
    cfg = config_file()
    cfg.chmod(0o640)
    code, rows = doctor(cfg)
    assert code == 0, rows
    assert rows["config"]["status"] == "PASS"
    cam = rows["camera"]  # the synthetic scene works, but a booth should not run on it
    assert cam["status"] == "WARN" and "a 320x240 photo" in cam["detail"] and "not a camera" in cam["detail"]
    assert rows["platform easy"]["status"] == "PASS" and "key accepted" in rows["platform easy"]["detail"]
    assert (
        rows["platform haiyi"]["status"] == "PASS" and "active clusters: GPU-4090" in rows["platform haiyi"]["detail"]
    )
    assert rows["gpio"]["status"] == "SKIP" and rows["mqtt"]["status"] == "SKIP"
    assert rows["disk"]["status"] == "PASS" and rows["queue"]["status"] == "PASS"
    assert rows["clock"]["status"] in ("PASS", "WARN") and "from the platform's clock" in rows["clock"]["detail"]


def test_table_output(config_file) -> None:
    r = run_cli("doctor", "-c", str(config_file()))
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert any(line.startswith("camera") and " WARN " in line for line in lines)  # the synthetic test scene


def test_no_gpio_is_a_fail_with_a_clear_message(config_file) -> None:
    cfg = config_file(buttons=[{"pin": 17, "action": "capture", "profile": "cartoon"}], indicators={"ready_led": 22})
    code, rows = doctor(cfg, GPIOZERO_PIN_FACTORY="nonexistent")
    assert code == 1
    assert rows["gpio"]["status"] == "FAIL"
    assert "buttons are disabled" in rows["gpio"]["detail"] and "(pins 17, 22)" in rows["gpio"]["detail"]


def test_wrong_key_and_unreachable_platform_fail(config_file, monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here once closed
    cfg = config_file(platforms={"haiyi": {"base_url": f"http://127.0.0.1:{dead}"}})
    code, rows = doctor(cfg, EDGE_AGENT_TEST_KEY="sk-wrong-key-000")
    assert code == 1
    assert rows["platform easy"]["status"] == "FAIL"
    assert "refused the API key" in rows["platform easy"]["detail"]
    assert "sk-wrong-key-000" not in json.dumps(rows)
    assert rows["platform haiyi"]["status"] == "FAIL" and "no answer" in rows["platform haiyi"]["detail"]


def test_mqtt_broker_reachable_or_not(config_file, tmp_path) -> None:
    from tests.support.mosquitto import Mosquitto

    broker = Mosquitto(tmp_path / "mq")
    broker.start()
    try:
        code, rows = doctor(config_file(mqtt={"enabled": True, "port": broker.port}))
        assert rows["mqtt"]["status"] == "PASS" and f"127.0.0.1:{broker.port}" in rows["mqtt"]["detail"]
        port = broker.port
    finally:
        broker.stop()
    code, rows = doctor(config_file(mqtt={"enabled": True, "port": port}))
    assert code == 1 and rows["mqtt"]["status"] == "FAIL"


def test_mqtt_check_connects_the_way_the_bridge_does(config_file, tmp_path) -> None:
    """Username/password from the secrets and the "auto" fallback to MQTT 3.1.1: doctor builds its client with the
    bridge's own connection code, so a broker doctor passes is one the daemon can use."""
    from tests.support.mosquitto import Mosquitto, TcpProxy

    broker = Mosquitto(tmp_path / "mq", users={"booth": "pw-right-123"})
    proxy = TcpProxy(broker.port, refuse_mqtt5=True)  # answers MQTT 5 like a 3.1.1-only broker
    try:
        cfg = config_file(
            mqtt={"enabled": True, "port": proxy.port, "username": "booth", "password_env": "EDGE_AGENT_TEST_MQTT_PW"}
        )
        code, rows = doctor(cfg, EDGE_AGENT_TEST_MQTT_PW="pw-right-123")
        assert rows["mqtt"]["status"] == "PASS", rows["mqtt"]
        assert "MQTT 3.1.1 only" in rows["mqtt"]["detail"] and proxy.refused >= 1
        code, rows = doctor(cfg, EDGE_AGENT_TEST_MQTT_PW="pw-wrong-456")
        assert code == 1 and rows["mqtt"]["status"] == "FAIL", rows["mqtt"]
        assert "cannot connect to the broker" in rows["mqtt"]["detail"] and "pw-wrong-456" not in json.dumps(rows)
    finally:
        proxy.close()
        broker.stop()


@pytest.mark.parametrize(
    "over,check",
    [
        ({"queue": {"min_free_disk_mb": 10**9}}, "disk"),
        ({"printer": {"enabled": True, "queue": "no-such-queue-xyz"}}, "printer"),
    ],
)
def test_other_failures(config_file, over, check) -> None:
    code, rows = doctor(config_file(**over))
    assert code == 1 and rows[check]["status"] == "FAIL", rows[check]


def test_doctor_with_an_invalid_config_still_answers_with_a_table(tmp_path) -> None:
    import json

    bad = tmp_path / "bad.toml"
    bad.write_text("[device]\nidd = 1\n")
    r = run_cli("doctor", "-c", str(bad))
    assert r.returncode == 2
    assert "config  FAIL    " in r.stdout and "device.idd: unknown key (did you mean 'id'?)" in r.stdout
    r = run_cli("doctor", "-c", str(bad), "--json")
    assert r.returncode == 2
    assert json.loads(r.stdout) == [
        {"name": "config", "status": "FAIL", "detail": f"{bad}: device.idd: unknown key (did you mean 'id'?)"}
    ]


def test_what_a_technician_missed_is_named(config_file, sim, tmp_path) -> None:
    """A base_url ending in /v1 (every job would 404 on /v1/v1/...), a profile pinned to a cluster that is not
    active, a config and key file every user can read."""
    key = tmp_path / "easy.key"
    key.write_text("sk-test-0123456789abcdef")
    key.chmod(0o644)
    cfg = config_file(
        platforms={"easy": {"base_url": sim.url + "/v1", "api_key_file": str(key)}},
        profiles=[
            {"name": "cartoon", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "x"},
            {"name": "tryon", "platform": "haiyi", "endpoint": "apps.run", "workflow_id": "1", "cluster": "GPU-H20"},
            {"name": "fast", "platform": "haiyi", "endpoint": "apps.run", "workflow_id": "1", "cluster": "GPU-4090"},
        ],
    )
    text = cfg.read_text().replace('api_key_env = "EDGE_AGENT_TEST_KEY"\n', "", 1)
    cfg.write_text(text)
    cfg.chmod(0o644)
    code, rows = doctor(cfg)
    assert code == 1
    easy = rows["platform easy"]
    assert easy["status"] == "FAIL" and "base_url must be the server's root, without /v1" in easy["detail"]
    assert (
        rows["cluster GPU-H20"]["status"] == "WARN"
        and "profile tryon is pinned to GPU-H20" in rows["cluster GPU-H20"]["detail"]
    )
    assert rows["cluster GPU-4090"]["status"] == "PASS"
    config = rows["config"]
    assert config["status"] == "WARN" and "is readable by every user" in config["detail"]
    assert f"api_key_file {key} is readable by every user" in config["detail"]
    assert rows["share links"]["status"] == "WARN" and "no phone can open" in rows["share links"]["detail"]
