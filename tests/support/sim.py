"""The one way tests run the built-in platform simulator: on loopback, a free port, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agent.simulator import SimConfig, Simulator
from tests.support.configs import TEST_KEY


@contextmanager
def running_sim(key: str = TEST_KEY, *, seed: int = 3, **settings: Any) -> Iterator[Simulator]:
    """A started simulator accepting `key` (SimConfig `settings` override the defaults); stopped at the end."""
    s = Simulator(SimConfig(host="127.0.0.1", port=0, seed=seed, **{"api_keys": (key,), **settings}))
    s.start()
    try:
        yield s
    finally:
        s.close()
