"""Sections for what the booth talks to over the network: the AI platforms, the MQTT broker, the local HTTP API.

Each one may carry a secret, given as ``<name>_file`` (preferred), ``<name>_env`` or inline (warned about); the
secret itself is read by secrets.py and kept out of these models' dumps.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.schema import _Model


class _PlatformBase(_Model):
    base_url: str = Field(description="the platform's API address, http:// or https:// (a trailing / is fine)")
    api_key: SecretStr | None = Field(None, description="the key written inline (warned about: prefer api_key_file)")
    api_key_file: Path | None = Field(None, description="a file holding the API key (mode 0600)")
    api_key_env: str | None = Field(None, description="an environment variable holding the API key")
    connect_timeout_s: float = Field(5.0, gt=0, le=120, description="how long to wait for a connection")
    read_timeout_s: float = Field(
        60.0, gt=0, le=600, description="how long to wait for an answer (sync edits are slow)"
    )
    poll_interval_s: float = Field(
        2.0, gt=0, le=120, description="how often an async task is asked about while nothing tells when it ends"
    )
    poll_min_s: float = Field(
        0.1, gt=0, le=60, description="the shortest gap between polls of a task (near its expected end)"
    )
    poll_max_s: float = Field(
        15.0, gt=0, le=600, description="the longest gap between polls of a task (while its end is far)"
    )
    max_download_mb: int = Field(100, ge=1, le=4096, description="an output larger than this is refused")
    download_deadline_s: float = Field(
        120.0, gt=0, le=3600, description="a download (headers and body) taking longer than this in all is cut off"
    )
    max_downloads_per_host: int = Field(
        2,
        ge=1,
        le=16,
        description="downloads from one host at once; more wait their turn (a slow host never holds every job)",
    )
    max_outputs: int = Field(
        16, ge=1, le=256, description="outputs kept per task; any beyond are dropped with a warning"
    )
    allow_private_hosts: list[str] = Field(
        default_factory=list,
        description="LAN hosts (private addresses) outputs may come from; never loopback, link-local or metadata",
    )
    upload_url: str | None = Field(
        None,
        description="upload target for pictures the platform needs as public URLs (POST `file`, JSON `url` back)",
    )
    public_dir: Path | None = Field(
        None, description="or: a folder a web server publishes (pictures written here, named by content hash)"
    )
    public_base_url: str | None = Field(None, description="the public URL of public_dir")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http:// or https:// URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("upload_url", "public_base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http:// or https:// URL, got {v!r}")
        return v

    @model_validator(mode="after")
    def _public_pair(self) -> _PlatformBase:
        if (self.public_dir is None) != (self.public_base_url is None):
            raise ValueError("public_dir and public_base_url go together (the folder and its public URL)")
        return self

    @model_validator(mode="after")
    def _one_key_source(self) -> _PlatformBase:
        given = [k for k in ("api_key", "api_key_file", "api_key_env") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of {', '.join(given)}")
        return self


class EasyAIPlatformConfig(_PlatformBase):
    kind: Literal["easyai"] = Field(
        description="EasyAI: images.edits | images.generations | videos.generations | ai.generations"
    )


class HaiyiPlatformConfig(_PlatformBase):
    kind: Literal["haiyi"] = Field(description="Haiyi: apps.run | workflow.submit | generate.image")


PlatformConfig = Annotated[EasyAIPlatformConfig | HaiyiPlatformConfig, Field(discriminator="kind")]
PLATFORM_KINDS = ("easyai", "haiyi")


class MqttConfig(_Model):
    enabled: bool = Field(False, description="connect to an MQTT broker (commands, events, Home Assistant)")
    host: str = Field("127.0.0.1", description="the broker's host name or address")
    port: int = Field(1883, ge=1, le=65535, description="the broker's port (8883 is usual with TLS)")
    topic_prefix: str = Field("edge-agent", pattern=r"^[^#+\s]+$", description="topics are <prefix>/<device.id>/...")
    client_id: str | None = Field(None, description="MQTT client id; default: edge-agent-<device.id>")
    keepalive_s: int = Field(30, ge=5, le=3600, description="seconds between keepalive pings")
    tls: bool = Field(False, description="connect with TLS")
    ca_file: Path | None = Field(None, description="CA certificate to trust for TLS; default: the system's")
    username: str | None = Field(None, description="broker user name")
    password: SecretStr | None = Field(None, description="the password inline (warned about: prefer password_file)")
    password_file: Path | None = Field(None, description="a file holding the broker password")
    password_env: str | None = Field(None, description="an environment variable holding the broker password")
    homeassistant_discovery: bool = Field(False, description="announce the booth to Home Assistant")
    allow_config_push: bool = Field(
        False, description="accept a whole new config on B/cmd/config (validated, rolled back when unhealthy)"
    )
    config_push_health_s: float = Field(
        60.0, ge=5, le=600, description="a pushed config must be healthy (services up, MQTT back) within this"
    )
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery topic prefix")
    protocol: Literal["auto", "5", "3.1.1"] = Field("auto", description="MQTT version; auto: 5, falling back to 3.1.1")
    response_topic_prefix: str | None = Field(
        None,
        pattern=r"^[^#+\s$\x00][^#+\s\x00]*$",
        description="MQTT 5 Response Topics must be below this; others are refused. Default: <topic_prefix>/replies",
    )


class HttpConfig(_Model):
    listen: str = Field("127.0.0.1:8080", description="HOST:PORT of the local API and kiosk page")
    token: SecretStr | None = Field(None, description="the API token inline (warned about: prefer token_file)")
    token_file: Path | None = Field(None, description="a file holding the API token (needed off loopback)")
    token_env: str | None = Field(None, description="an environment variable holding the API token")
    public_url: str | None = Field(None, description="how results are linked (MQTT, QR codes); default http://<listen>")

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
            raise ValueError(f"must be HOST:PORT, got {v!r}")
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
