"""Shared fixtures: the built-in simulator over real HTTP, config files written to tmp, a running Agent.
Helpers live in tests/support/ (tests import them from there, never from this file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.configs import KEY_ENV, TEST_KEY, base_config, merge, write_config
from tests.support.sim import running_sim


@pytest.fixture(autouse=True)
def _test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, TEST_KEY)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with running_sim(TEST_KEY, seed=3, latency=0.2) as s:
        yield s


@pytest.fixture
def config_file(tmp_path: Path, sim: Any):
    """config_file(**overrides) -> Path of a TOML config for the simulator, overrides merged per section."""

    def make(**over: Any) -> Path:
        return write_config(tmp_path / "config.toml", merge(base_config(tmp_path, sim.url), over))

    return make


@pytest.fixture
def make_agent(config_file):
    """make_agent(**overrides) -> a started Agent (stopped at teardown)."""
    from agent.config import load_config
    from agent.core import Agent

    agents: list[Any] = []

    def make(**over: Any) -> Any:
        a = Agent(load_config(config_file(**over)))
        a.start()
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.stop()


@pytest.fixture
def api(config_file):
    """(agent, HttpApi): a started Agent with its local HTTP API on a free loopback port."""
    from tests.support.http import api_booths

    with api_booths() as start:
        yield start(config_file())


@pytest.fixture
def srv():
    """A deliberately hostile platform server (tests/support/hostile.py)."""
    from tests.support.hostile import HostileServer

    with HostileServer() as s:
        yield s


@pytest.fixture
def clients():
    """clients(base_url, kind, **cfg) -> a platform client, closed after the test."""
    from tests.support.hostile import Clients

    made = Clients()
    yield made
    made.close()
