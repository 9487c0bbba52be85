"""Platform clients (EasyAI, Haiyi) and their modes.

Layout: base.py (the contract: SubmitRequest, TaskStatus, PlatformClient, ...), errors.py (error classes and the
HTTP classification table), session.py (one httpx session per platform, origin-bound auth), transport.py (the
connection layer: checked addresses, a total deadline on every socket call, downloads per host), targets.py (the
SSRF guard: addresses normalised and classified), bodies.py (bodies read with the decoded size bounded), media.py,
download.py, comfy.py (ComfyUI conventions), replies.py (lenient reply values), client.py (what both clients share,
and the edge every reply and error passes: masked, bounded), easyai.py / haiyi.py (each platform's conventions),
modes/ (one module per endpoint, and the registry).

``make_client`` is the one place a client is chosen from config; the client modules are imported lazily by kind.
This package never imports ``agent.config`` (the config imports the mode registry from here).
"""

from __future__ import annotations

from pydantic import SecretStr

from agent.platforms.base import PlatformClient, PlatformSettings


def make_client(
    name: str, cfg: PlatformSettings, api_key: SecretStr | None, *, user_agent: str | None = None
) -> PlatformClient:
    """The client for ``[platforms.<name>]``; ``close()`` it when done."""
    if cfg.kind == "easyai":
        from agent.platforms.easyai import EasyAIClient

        return EasyAIClient(name, cfg, api_key, user_agent=user_agent)
    if cfg.kind == "haiyi":
        from agent.platforms.haiyi import HaiyiClient

        return HaiyiClient(name, cfg, api_key, user_agent=user_agent)
    raise ValueError(f"platforms.{name}: unknown platform kind {cfg.kind!r}")


__all__ = ["make_client"]
