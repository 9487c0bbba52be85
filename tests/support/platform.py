"""Shared scaffolding for the platform-client tests: a simulator per module, clients closed after each test."""

from __future__ import annotations

import io
from contextlib import AbstractContextManager
from typing import Any

from PIL import Image
from pydantic import SecretStr

from agent.platforms import make_client
from agent.simulator import FAILURE_KINDS, Simulator
from tests.support.sim import running_sim


def sim_defaults(key: str) -> dict[str, Any]:
    """The settings each test starts from (an autouse fixture puts them back after every test)."""
    return dict(
        api_keys=(key,),
        latency=0.2,
        fail_rate=0.0,
        failure_kinds=FAILURE_KINDS,
        queue_limit=None,
        workers=8,
        retry_after_s=1.0,
        url_ttl_s=300.0,
        expire_fast_s=1.0,
        max_upload_bytes=20_000_000,
        quirks=frozenset(),
    )


def platform_sim(key: str, seed: int) -> AbstractContextManager[Simulator]:
    """The simulator the client tests share, with the settings each of them starts from."""
    return running_sim(key, seed=seed, **sim_defaults(key))


class ClientMaker:
    """`make(base_url=None, key=KEY, **platform_cfg)` -> a client of one kind against the simulator."""

    def __init__(self, sim: Simulator, config_cls: type, kind: str, name: str, key: str) -> None:
        self.sim, self.config_cls, self.kind, self.name, self.key = sim, config_cls, kind, name, key
        self.made: list[Any] = []

    def __call__(self, base_url: str | None = None, key: str | None = "", **cfg: Any) -> Any:
        key = self.key if key == "" else key
        plat = self.config_cls(kind=self.kind, base_url=base_url or self.sim.url, **cfg)
        c = make_client(self.name, plat, SecretStr(key) if key else None)
        self.made.append(c)
        return c

    def close(self) -> None:
        for c in self.made:
            c.close()


def jpeg(w: int = 96, h: int = 64, color: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "JPEG")
    return buf.getvalue()
