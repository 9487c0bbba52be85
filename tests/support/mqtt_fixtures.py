"""Fixtures for the MQTT tests (a test module loads them with ``pytest_plugins = ("tests.support.mqtt_fixtures",)``):
a module-wide Mosquitto and simulator, `make_booth` (a real Agent + MqttBridge) and `watchers` (recording clients)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import API_KEY, KEY_ENV, Booth, Watcher, booth_config
from tests.support.sim import running_sim


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    b = Mosquitto(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def sim_url():
    with running_sim(API_KEY, latency=0.1) as sim:
        yield sim.url


@pytest.fixture(autouse=True)
def mqtt_key_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)


@pytest.fixture
def make_booth(tmp_path: Path, broker: Mosquitto, sim_url: str):
    made: list[Booth] = []

    def make(*, port: int | None = None, connect: bool = True, **mqtt: Any) -> Booth:
        b = Booth(booth_config(tmp_path, port or broker.port, sim_url, **mqtt), tmp_path, connect=connect)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def watchers():
    made: list[Watcher] = []

    def make(*a: Any, **kw: Any) -> Watcher:
        w = Watcher(*a, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
