"""The one config model and the one place that reads it.

A TOML file is parsed into pydantic models. Every error is reported as ``PATH: key.path: message`` so a
technician can find the line to fix; ``load_config`` raises ``ConfigError`` with all of them at once.
Relative paths in the file are resolved against the directory of the config file.
Secrets (``*_file`` / ``*_env`` / inline) are resolved at load time into ``SecretStr`` values that never print.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_PATH = Path("/etc/edge-agent/config.toml")
BCM_PINS = range(0, 28)


def config_path_from_env(explicit: str | os.PathLike | None) -> Path:
    """`-c PATH`, else `$EDGE_AGENT_CONFIG`, else the system default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("EDGE_AGENT_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --------------------------------------------------------------------------------------------- device


class DeviceConfig(_Model):
    id: str = Field("booth-01", pattern=r"^[a-z0-9_-]+$", description="MQTT topics and file names")
    state_dir: Path = Path("/var/lib/edge-agent")
    output_dir: Path | None = None  # default: <state_dir>/results

    @property
    def results_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.state_dir / "results"


# --------------------------------------------------------------------------------------------- camera


class _CameraBase(_Model):
    width: int = Field(1920, ge=16, le=8192)
    height: int = Field(1080, ge=16, le=8192)
    timeout_s: float = Field(5.0, gt=0, le=60, description="a capture that takes longer fails, never hangs")


class SyntheticCameraConfig(_CameraBase):
    driver: Literal["synthetic"] = "synthetic"


class FileCameraConfig(_CameraBase):
    driver: Literal["file"]
    path: Path  # one image, or a folder of images taken in name order, round-robin

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path) -> Path:
        if not v.exists():
            raise ValueError(f"no such file or folder: {v}")
        return v


class OpenCVCameraConfig(_CameraBase):
    driver: Literal["opencv"]
    device: str | int = 0  # /dev/videoN, an index, or a video file (tests, demos)
    warmup_frames: int = Field(3, ge=0, le=60, description="frames dropped after opening (auto exposure)")


class Picamera2CameraConfig(_CameraBase):
    driver: Literal["picamera2"]
    camera_num: int = Field(0, ge=0, le=7)


CameraConfig = Annotated[
    Union[SyntheticCameraConfig, FileCameraConfig, OpenCVCameraConfig, Picamera2CameraConfig],
    Field(discriminator="driver"),
]


class UploadConfig(_Model):
    max_edge: int = Field(2048, ge=64, le=8192, description="longest edge of the uploaded JPEG")
    jpeg_quality: int = Field(90, ge=1, le=100)


# --------------------------------------------------------------------------------------------- platforms


class _PlatformBase(_Model):
    base_url: str
    api_key: SecretStr | None = None  # inline: accepted with a warning
    api_key_file: Path | None = None
    api_key_env: str | None = None
    connect_timeout_s: float = Field(5.0, gt=0, le=120)
    read_timeout_s: float = Field(60.0, gt=0, le=600, description="sync endpoints (images.edits) can be slow")
    poll_interval_s: float = Field(2.0, gt=0, le=120)
    max_download_mb: int = Field(100, ge=1, le=4096, description="an output larger than this is refused")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http:// or https:// URL, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _one_key_source(self) -> "_PlatformBase":
        given = [k for k in ("api_key", "api_key_file", "api_key_env") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of {', '.join(given)}")
        return self


class EasyAIPlatformConfig(_PlatformBase):
    kind: Literal["easyai"]


class HaiyiPlatformConfig(_PlatformBase):
    kind: Literal["haiyi"]


PlatformConfig = Annotated[Union[EasyAIPlatformConfig, HaiyiPlatformConfig], Field(discriminator="kind")]

ENDPOINTS: dict[str, tuple[str, ...]] = {
    "easyai": ("images.edits", "ai.generations"),
    "haiyi": ("apps.run", "workflow.submit", "generate.image"),
}


class ThirdPartyModel(_Model):
    provider: str
    model: str
    type: Literal["text2image", "image2image"] = "image2image"


class ProfileConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    platform: str
    endpoint: str
    model: str | ThirdPartyModel | None = None
    prompt: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    # haiyi apps.run / workflow.submit
    workflow_id: str | None = None
    version_id: str | None = None
    cluster: str | None = None  # a cluster name, or "auto"
    image_field: str = "input_image"
    files: dict[str, Path] = Field(default_factory=dict)
    workflow_file: Path | None = None
    inputs: dict[str, str] = Field(default_factory=dict)
    remote_params: list[str] = Field(default_factory=list)

    @field_validator("workflow_id", "version_id", mode="before")
    @classmethod
    def _id_as_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("files")
    @classmethod
    def _files_exist(cls, v: dict[str, Path]) -> dict[str, Path]:
        for name, p in v.items():
            if not p.is_file():
                raise ValueError(f"{name}: no such file: {p}")
        return v

    @field_validator("workflow_file")
    @classmethod
    def _workflow_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v


class ButtonConfig(_Model):
    pin: int
    action: Literal["capture", "cancel", "print", "retry"] = "capture"
    profile: str | None = None
    hold_action: Literal["capture", "cancel", "print", "retry"] | None = None
    hold_profile: str | None = None
    hold_time_s: float = Field(2.0, gt=0, le=30)
    bounce_time_s: float = Field(0.05, ge=0, le=1)
    pull_up: bool = True  # a button wired between the pin and ground


class IndicatorsConfig(_Model):
    ready_led: int | None = None
    busy_led: int | None = None
    error_led: int | None = None


class MqttConfig(_Model):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("edge-agent", pattern=r"^[^#+\s]+$")
    client_id: str | None = None  # default: edge-agent-<device.id>
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    password_env: str | None = None
    homeassistant_discovery: bool = False
    discovery_prefix: str = "homeassistant"
    protocol: Literal["auto", "5", "3.1.1"] = "auto"  # auto: MQTT 5, falling back to 3.1.1


class HttpConfig(_Model):
    listen: str = "127.0.0.1:8080"
    token: SecretStr | None = None
    token_file: Path | None = None
    token_env: str | None = None
    public_url: str | None = None  # how results are linked from MQTT / QR codes; default http://<listen>

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


class DisplayConfig(_Model):
    backend: Literal["web", "none"] = "web"


class PrinterConfig(_Model):
    enabled: bool = False
    queue: str = "booth"
    auto_print: bool = False


class QueueConfig(_Model):
    task_deadline_s: float = Field(1800, ge=1, description="give up polling a submitted task after this")
    min_free_disk_mb: int = Field(200, ge=0, description="below this, new captures are refused")
    max_in_flight: int = Field(4, ge=1, le=64, description="tasks on the platforms at once (downloads excluded)")
    retry_base_s: float = Field(2.0, gt=0, le=600, description="first transient-error backoff (full jitter)")
    retry_cap_s: float = Field(300.0, gt=0, le=86400, description="longest transient-error backoff")
    probe_interval_s: float = Field(5.0, gt=0, le=600, description="how often an unreachable platform is probed")


class Config(_Model):
    device: DeviceConfig = Field(default_factory=DeviceConfig)
    camera: CameraConfig = Field(default_factory=SyntheticCameraConfig)
    upload: UploadConfig = Field(default_factory=UploadConfig)
    platforms: dict[str, PlatformConfig] = Field(default_factory=dict)
    profiles: list[ProfileConfig] = Field(default_factory=list)
    buttons: list[ButtonConfig] = Field(default_factory=list)
    indicators: IndicatorsConfig = Field(default_factory=IndicatorsConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)
    printer: PrinterConfig = Field(default_factory=PrinterConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)

    # not from the file: where it was read, and resolved secrets
    source: Path | None = Field(None, exclude=True)

    def profile(self, name: str | None) -> ProfileConfig:
        """The named profile, or the default (first) one."""
        if name is None:
            return self.profiles[0]
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(name)


# --------------------------------------------------------------------------------------------- loading


@dataclass
class ConfigIssue:
    key: str
    message: str


@dataclass
class ConfigError(Exception):
    path: Path
    issues: list[ConfigIssue] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.path}: {i.key}: {i.message}" if i.key else f"{self.path}: {i.message}" for i in self.issues]

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class LoadedConfig:
    config: Config
    warnings: list[str]
    secrets: "Secrets"


@dataclass
class Secrets:
    """Resolved secrets, kept apart from anything that is ever serialised."""

    platform_keys: dict[str, SecretStr] = field(default_factory=dict)
    mqtt_password: SecretStr | None = None
    http_token: SecretStr | None = None

    def all_values(self) -> list[str]:
        vals = [s.get_secret_value() for s in self.platform_keys.values()]
        vals += [s.get_secret_value() for s in (self.mqtt_password, self.http_token) if s is not None]
        return [v for v in vals if v]


_PATH_KEYS = {
    ("device", "state_dir"),
    ("device", "output_dir"),
    ("camera", "path"),
    ("mqtt", "ca_file"),
    ("mqtt", "password_file"),
    ("http", "token_file"),
}


def _resolve_relative_paths(raw: dict, base: Path) -> None:
    """Make relative paths in the raw TOML relative to the config file's folder (before validation)."""

    def fix(v: Any) -> Any:
        if isinstance(v, str) and v and not os.path.isabs(v) and not v.startswith("~"):
            return os.path.normpath(base / v)
        if isinstance(v, str) and v.startswith("~"):
            return os.path.expanduser(v)
        return v

    for section, key in _PATH_KEYS:
        sec = raw.get(section)
        if isinstance(sec, dict) and key in sec:
            sec[key] = fix(sec[key])
    cam = raw.get("camera")
    if isinstance(cam, dict) and cam.get("driver") == "opencv" and isinstance(cam.get("device"), str):
        dev = cam["device"]
        if not dev.isdigit() and not dev.startswith("/dev/") and not re.match(r"^[a-z]+://", dev):
            cam["device"] = fix(dev)
    for plat in (raw.get("platforms") or {}).values():
        if isinstance(plat, dict) and "api_key_file" in plat:
            plat["api_key_file"] = fix(plat["api_key_file"])
    for prof in raw.get("profiles") or []:
        if not isinstance(prof, dict):
            continue
        if "workflow_file" in prof:
            prof["workflow_file"] = fix(prof["workflow_file"])
        if isinstance(prof.get("files"), dict):
            prof["files"] = {k: fix(v) for k, v in prof["files"].items()}


def _loc_to_key(raw: Any, loc: tuple) -> tuple[str, Any]:
    """Turn a pydantic error location into `a.b[0].c`, dropping union tags that are not in the data."""
    parts: list[str] = []
    cur = raw
    for el in loc:
        if isinstance(el, int):
            parts.append(f"[{el}]")
            cur = cur[el] if isinstance(cur, list) and el < len(cur) else None
        elif isinstance(cur, dict) and el in cur:
            parts.append(("." if parts else "") + str(el))
            cur = cur[el]
        elif isinstance(cur, dict) and el in ("function-after", "function-before", "function-wrap"):
            continue
        elif isinstance(cur, dict) and _is_tag(cur, el):
            continue  # the discriminator value pydantic adds for tagged unions
        else:
            parts.append(("." if parts else "") + str(el))
            cur = None
    return "".join(parts), cur


def _is_tag(d: dict, el: Any) -> bool:
    return isinstance(el, str) and el in (d.get("driver"), d.get("kind"))


def _model_for_loc(loc: tuple) -> type[BaseModel] | None:
    """The model whose fields an `extra_forbidden` error at `loc` belongs to (for did-you-mean hints)."""
    model: Any = Config
    for el in loc[:-1]:
        if isinstance(el, int):
            continue
        if el in _TAGGED:
            model = _TAGGED[el]
            continue
        if model is None:
            continue  # a dict key like [platforms.<name>]: the tag that follows names the model
        fld = model.model_fields.get(el) if hasattr(model, "model_fields") else None
        if fld is None:
            if model is Config and el not in Config.model_fields:
                return None
            continue
        model = _SECTION_MODELS.get((model.__name__, el))
    return model


_TAGGED: dict[str, type[BaseModel]] = {
    "synthetic": SyntheticCameraConfig,
    "file": FileCameraConfig,
    "opencv": OpenCVCameraConfig,
    "picamera2": Picamera2CameraConfig,
    "easyai": EasyAIPlatformConfig,
    "haiyi": HaiyiPlatformConfig,
}
_SECTION_MODELS: dict[tuple[str, str], type[BaseModel] | None] = {
    ("Config", "device"): DeviceConfig,
    ("Config", "camera"): None,  # tagged: resolved by the tag in the loc
    ("Config", "upload"): UploadConfig,
    ("Config", "platforms"): None,
    ("Config", "profiles"): ProfileConfig,
    ("Config", "buttons"): ButtonConfig,
    ("Config", "indicators"): IndicatorsConfig,
    ("Config", "mqtt"): MqttConfig,
    ("Config", "http"): HttpConfig,
    ("Config", "display"): DisplayConfig,
    ("Config", "printer"): PrinterConfig,
    ("Config", "queue"): QueueConfig,
    ("ProfileConfig", "model"): ThirdPartyModel,
}


def _friendly(err: dict, raw: dict) -> tuple[str, str]:
    loc = tuple(err["loc"])
    key, value = _loc_to_key(raw, loc)
    typ = err["type"]
    msg = err["msg"]
    if typ == "extra_forbidden":
        name = str(loc[-1])
        model = _model_for_loc(loc)
        hint = ""
        if model is not None:
            close = difflib.get_close_matches(name, [n for n in model.model_fields if n != "source"], n=1)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
        return key, f"unknown key{hint}"
    if typ == "missing":
        return key, "missing required key"
    if typ == "union_tag_invalid":
        expected = err.get("ctx", {}).get("expected_tags", "")
        tag = err.get("ctx", {}).get("tag", "")
        field_name = err.get("ctx", {}).get("discriminator", "").strip("'")
        key = f"{key}.{field_name}" if field_name else key
        return key, f"unknown value {tag!r}; expected one of {expected}"
    if typ == "union_tag_not_found":
        field_name = err.get("ctx", {}).get("discriminator", "").strip("'")
        return f"{key}.{field_name}" if field_name else key, "missing required key"
    if typ == "literal_error":
        return key, f"got {value!r}; expected {err.get('ctx', {}).get('expected', '')}"
    if typ == "string_pattern_mismatch":
        return key, f"{value!r} does not match {err.get('ctx', {}).get('pattern')}"
    simple = {
        "int_parsing": "expected an integer", "int_type": "expected an integer",
        "int_from_float": "expected a whole number", "float_parsing": "expected a number",
        "float_type": "expected a number", "bool_parsing": "expected true or false",
        "bool_type": "expected true or false", "string_type": "expected a string",
        "dict_type": "expected a table", "list_type": "expected a list", "model_type": "expected a table",
    }
    if typ in simple:
        return key, f"{simple[typ]}, got {value!r}"
    if typ in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}[typ]
        bound = next(iter(err.get("ctx", {}).values()), "?")
        return key, f"must be {op} {bound}, got {value!r}"
    if typ == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif value is not None and not isinstance(value, (dict, list)):
        msg = f"{msg} (got {value!r})"
    return key, msg


def _semantic_checks(cfg: Config) -> list[ConfigIssue]:
    """Cross-field rules pydantic field validators cannot see."""
    issues: list[ConfigIssue] = []
    names = [p.name for p in cfg.profiles]
    for i, prof in enumerate(cfg.profiles):
        if names.count(prof.name) > 1 and names.index(prof.name) != i:
            issues.append(ConfigIssue(f"profiles[{i}].name", f"duplicate profile name {prof.name!r}"))
        plat = cfg.platforms.get(prof.platform)
        if plat is None:
            hint = difflib.get_close_matches(prof.platform, list(cfg.platforms), n=1)
            issues.append(
                ConfigIssue(
                    f"profiles[{i}].platform",
                    f"unknown platform {prof.platform!r}"
                    + (f" (did you mean '{hint[0]}'?)" if hint else f"; defined: {', '.join(cfg.platforms) or 'none'}"),
                )
            )
            continue
        allowed = ENDPOINTS[plat.kind]
        if prof.endpoint not in allowed:
            issues.append(
                ConfigIssue(
                    f"profiles[{i}].endpoint",
                    f"{prof.endpoint!r} is not an endpoint of a {plat.kind!r} platform; expected one of {', '.join(allowed)}",
                )
            )
            continue
        need: list[str] = []
        if prof.endpoint == "apps.run" and not prof.workflow_id:
            need.append("workflow_id")
        if prof.endpoint == "workflow.submit":
            if prof.workflow_file is None:
                need.append("workflow_file")
            if not prof.inputs:
                need.append("inputs")
        if prof.endpoint == "generate.image" and not isinstance(prof.model, ThirdPartyModel):
            issues.append(
                ConfigIssue(f"profiles[{i}].model", "generate.image needs model = { provider, model, type }")
            )
        if prof.endpoint in ("images.edits", "ai.generations") and not isinstance(prof.model, str):
            need.append("model")
        for k in need:
            issues.append(ConfigIssue(f"profiles[{i}].{k}", f"missing required key for endpoint {prof.endpoint}"))
        for r in prof.remote_params:
            if r in ("image", "images", "mask", "files", "workflow_file", "url", "image_url"):
                issues.append(
                    ConfigIssue(f"profiles[{i}].remote_params", f"{r!r} can never be set remotely (paths and URLs)")
                )
    if not cfg.profiles:
        issues.append(ConfigIssue("profiles", "at least one [[profiles]] entry is needed"))

    pins: dict[int, str] = {}

    def claim(pin: int | None, where: str) -> None:
        if pin is None:
            return
        if pin not in BCM_PINS:
            issues.append(ConfigIssue(where, f"BCM pin {pin} does not exist (0-27)"))
            return
        if pin in pins:
            issues.append(ConfigIssue(where, f"pin {pin} is already used by {pins[pin]}"))
            return
        pins[pin] = where

    for i, b in enumerate(cfg.buttons):
        claim(b.pin, f"buttons[{i}].pin")
        for prof_key in ("profile", "hold_profile"):
            prof_name = getattr(b, prof_key)
            if prof_name is not None and prof_name not in names:
                issues.append(ConfigIssue(f"buttons[{i}].{prof_key}", f"unknown profile {prof_name!r}"))
    for led in ("ready_led", "busy_led", "error_led"):
        claim(getattr(cfg.indicators, led), f"indicators.{led}")

    if cfg.mqtt.ca_file is not None and not cfg.mqtt.ca_file.is_file():
        issues.append(ConfigIssue("mqtt.ca_file", f"no such file: {cfg.mqtt.ca_file}"))
    if not cfg.http.is_loopback and not (cfg.http.token or cfg.http.token_file or cfg.http.token_env):
        issues.append(
            ConfigIssue("http.listen", f"{cfg.http.host} is not loopback: set http.token_file so the API needs a token")
        )
    return issues


def _read_secret(
    issues: list[ConfigIssue], warnings: list[str], where: str, inline: SecretStr | None, file: Path | None,
    env: str | None, inline_name: str,
) -> SecretStr | None:
    if inline is not None:
        warnings.append(f"{where}.{inline_name}: a secret written in the config file; prefer {inline_name}_file")
        return inline
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            issues.append(ConfigIssue(f"{where}.{inline_name}_file", f"no such file: {file}"))
            return None
        except OSError as e:
            issues.append(ConfigIssue(f"{where}.{inline_name}_file", f"cannot read {file}: {e.strerror}"))
            return None
        if not value:
            issues.append(ConfigIssue(f"{where}.{inline_name}_file", f"file is empty: {file}"))
            return None
        return SecretStr(value)
    if env is not None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):  # e.g. the key itself pasted here: never echo it
            issues.append(ConfigIssue(f"{where}.{inline_name}_env",
                                      "must be the name of an environment variable (like EASYAI_API_KEY)"))
            return None
        value = os.environ.get(env, "").strip()
        if not value:
            issues.append(ConfigIssue(f"{where}.{inline_name}_env", f"environment variable {env} is not set"))
            return None
        return SecretStr(value)
    return None


def parse_config(raw: dict, path: Path) -> LoadedConfig:
    """Validate an already-parsed TOML document (raises ConfigError)."""
    warnings: list[str] = []
    _resolve_relative_paths(raw, path.parent.resolve())
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        issues = [ConfigIssue(*_friendly(err, raw)) for err in e.errors()]
        raise ConfigError(path, issues) from None
    cfg.source = path
    issues = _semantic_checks(cfg)
    secrets = Secrets()
    for name, plat in cfg.platforms.items():
        key = _read_secret(
            issues, warnings, f"platforms.{name}", plat.api_key, plat.api_key_file, plat.api_key_env, "api_key"
        )
        if key is not None:
            secrets.platform_keys[name] = key
        else:
            warnings.append(f"platforms.{name}: no api key configured (api_key_file or api_key_env)")
    secrets.mqtt_password = _read_secret(
        issues, warnings, "mqtt", cfg.mqtt.password, cfg.mqtt.password_file, cfg.mqtt.password_env, "password"
    )
    secrets.http_token = _read_secret(
        issues, warnings, "http", cfg.http.token, cfg.http.token_file, cfg.http.token_env, "token"
    )
    if issues:
        raise ConfigError(path, issues)
    return LoadedConfig(cfg, warnings, secrets)


def load_config(path: str | os.PathLike) -> LoadedConfig:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, [ConfigIssue("", "config file not found")]) from None
    except OSError as e:
        raise ConfigError(path, [ConfigIssue("", f"cannot read config file: {e.strerror}")]) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, [ConfigIssue("", "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, [ConfigIssue("", f"TOML syntax error: {e}")]) from None
    return parse_config(raw, path)
