"""Platform clients (EasyAI, Haiyi): see base.py for the contract, http.py for the shared plumbing.

``make_client`` is the one place a client is chosen from config; the modules are imported lazily by kind.
"""

from __future__ import annotations

from pydantic import SecretStr

from agent.config import EasyAIPlatformConfig, HaiyiPlatformConfig, PlatformConfig
from agent.platforms.base import PlatformClient


def make_client(
    name: str, cfg: PlatformConfig, api_key: SecretStr | None, *, user_agent: str | None = None
) -> PlatformClient:
    """The client for ``[platforms.<name>]``; ``close()`` it when done."""
    if isinstance(cfg, EasyAIPlatformConfig):
        from agent.platforms.easyai import EasyAIClient

        return EasyAIClient(name, cfg, api_key, user_agent=user_agent)
    if isinstance(cfg, HaiyiPlatformConfig):
        from agent.platforms.haiyi import HaiyiClient

        return HaiyiClient(name, cfg, api_key, user_agent=user_agent)
    raise ValueError(f"platforms.{name}: unknown platform kind {getattr(cfg, 'kind', None)!r}")


__all__ = ["make_client"]
