"""`edge-agent doctor`: what a field technician checks first, as one table of PASS / WARN / FAIL (SKIP: not used).

Each check is a small function returning ``Check``; none of them can hang (every network or hardware call has a
timeout). Exit 1 when any check FAILs.
"""

from __future__ import annotations

import email.utils
import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.config import LoadedConfig

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"


@dataclass
class Check:
    name: str
    status: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def run_checks(loaded: LoadedConfig) -> list[Check]:
    from agent.daemon import daemon_info

    daemon = daemon_info(loaded.config.device.state_dir)
    checks = [
        check_config(loaded),
        check_daemon(daemon, loaded.config.source),
        check_camera(loaded, daemon),
        check_gpio(loaded),
    ]
    skews: list[float] = []
    checks += check_platforms(loaded, skews)
    checks += [
        check_mqtt(loaded, daemon=daemon),
        check_printer(loaded),
        check_disk(loaded),
        check_clock(skews),
        check_queue(loaded),
        check_share(loaded),
    ]
    return checks


def check_share(loaded: LoadedConfig) -> Check:
    """The QR code's link must be one a guest's phone can open: not the device's loopback address."""
    c = loaded.config
    if c.display.backend == "none" or not c.display.share:
        return Check("share links", SKIP, "no QR codes ([display] share = false)")
    if c.http.public_url:
        return Check("share links", PASS, f"QR codes link to {c.http.public_url.rstrip('/')}/share/...")
    host = c.http.host
    if host.startswith("127.") or host in ("localhost", "::1"):
        return Check(
            "share links",
            WARN,
            f"QR codes would link to http://{c.http.listen}/share/..., which no phone can open: set [http] "
            "public_url (e.g. http://booth-01.local:8080) and listen on the network with a token_file",
        )
    return Check("share links", PASS, f"QR codes link to this device's address, port {c.http.port}")


def check_config(loaded: LoadedConfig) -> Check:
    c = loaded.config
    detail = f"{c.source}: {len(c.profiles)} profile(s), {len(c.platforms)} platform(s)"
    warnings = list(loaded.warnings) + _readable_by_others(loaded)
    if warnings:
        return Check("config", WARN, detail + "; " + "; ".join(warnings))
    return Check("config", PASS, detail)


def _readable_by_others(loaded: LoadedConfig) -> list[str]:
    """The config and the key files it names should not be readable by every user of the device."""
    c = loaded.config
    files: list[tuple[str, Path | None]] = [("the config", c.source)]
    files += [(f"platforms.{n}.api_key_file", p.api_key_file) for n, p in c.platforms.items()]
    files += [("mqtt.password_file", c.mqtt.password_file), ("http.token_file", c.http.token_file)]
    out = []
    for what, f in files:
        try:
            if f is not None and f.stat().st_mode & 0o004:
                out.append(f"{what} {f} is readable by every user (chmod o-r {f})")
        except OSError:
            pass
    return out


def check_daemon(info: dict | None, config: Path | None = None) -> Check:
    if info is None:
        system = config is None or config == Path("/etc/edge-agent/config.toml")
        how = "systemctl start edge-agent" if system else f"edge-agent run -c {config}"
        return Check("daemon", WARN, f"not running ({how})")
    return Check("daemon", PASS, f"running (pid {info['pid']}) at {info['url']}")


def check_camera(loaded: LoadedConfig, daemon: dict | None) -> Check:
    cam_cfg = loaded.config.camera
    if daemon is not None and cam_cfg.driver in ("picamera2", "opencv"):
        return _daemon_camera(loaded, cam_cfg.driver)  # it holds the camera: ask it how the camera is
    from agent.camera import camera_spec
    from hardware.camera import CameraError, make_camera

    try:
        cam = make_camera(camera_spec(cam_cfg))
    except CameraError as e:
        return Check("camera", FAIL, str(e))
    try:
        t0 = time.monotonic()
        photo = cam.capture()
        ms = (time.monotonic() - t0) * 1000
        said = f"{cam.describe()}: a {photo.width}x{photo.height} photo in {ms:.0f} ms"
        if cam_cfg.driver == "synthetic":  # the default: a booth that forgot [camera] would send a test pattern
            return Check("camera", WARN, said + "; a generated test scene, not a camera: set [camera] driver")
        return Check("camera", PASS, said)
    except Exception as e:  # any driver failure is what the technician needs to see
        return Check("camera", FAIL, f"{cam_cfg.driver}: {e}")
    finally:
        try:
            cam.close()
        except Exception:
            pass


def _daemon_camera(loaded: LoadedConfig, driver: str) -> Check:
    from agent.cli.common import api_client

    try:
        client, _ = api_client(loaded)
        with client:
            state = client.get("/api/state", timeout=5.0).json()
        cam = state["camera"]
    except Exception as e:  # the daemon is busy, stopping, or an older version without camera state
        return Check("camera", WARN, f"{driver}: held by the running daemon, which did not say how it is ({e})")
    detail = f" ({cam['detail']})" if cam.get("detail") else ""
    said = f"{driver}: {cam['state']} in the running daemon{detail}"
    if cam["state"] == "ok":
        return Check("camera", PASS, said)
    if cam["state"] == "opening":
        return Check("camera", WARN, said)
    return Check("camera", FAIL, said)


def check_gpio(loaded: LoadedConfig) -> Check:
    c = loaded.config
    leds = [v for v in c.indicators.model_dump().values() if v is not None]
    if not c.buttons and not leds:
        return Check("gpio", SKIP, "no buttons or LEDs configured")
    from hardware.gpio import ButtonBoard

    ok, msg = ButtonBoard.check()
    pins = sorted([b.pin for b in c.buttons] + leds)
    return Check("gpio", PASS if ok else FAIL, f"{msg} (pins {', '.join(map(str, pins))})")


def check_platforms(loaded: LoadedConfig, skews: list[float]) -> list[Check]:
    from agent.platforms import make_client
    from agent.platforms.base import AuthError, PlatformError

    out = []
    for name, p in loaded.config.platforms.items():
        key = loaded.secrets.platform_keys.get(name)
        label = f"platform {name}"
        if key is None:
            out.append(Check(label, FAIL, f"{p.kind} at {p.base_url}: no API key (api_key_file or api_key_env)"))
            continue
        client = make_client(name, p, key)
        t0 = time.monotonic()
        try:
            detail = client.verify()
            status = PASS
        except AuthError as e:
            status, detail = FAIL, f"the platform refused the API key: {e}"
        except PlatformError as e:
            host = p.base_url.split("://", 1)[-1].rstrip("/")
            status, detail = FAIL, str(e).removeprefix(f"{host}: ")  # the row already names the address
            if e.kind in ("network", "timeout"):
                detail += f"; is the platform up and [platforms.{name}] base_url right?"
        finally:
            date = getattr(client, "server_date", None)
            client.close()
        ms = (time.monotonic() - t0) * 1000
        if date:
            try:
                skews.append(time.time() - email.utils.parsedate_to_datetime(date).timestamp())
            except (TypeError, ValueError):
                pass
        out.append(Check(label, status, f"{p.kind} at {p.base_url}: {detail} ({ms:.0f} ms)"))
        if status == PASS and p.kind == "haiyi":
            out += _pinned_clusters(loaded, name, key)
    return out


def _pinned_clusters(loaded: LoadedConfig, name: str, key: Any) -> list[Check]:
    """A profile pinned to a cluster that is inactive or full now: its jobs wait (WARN, not FAIL: it may free up)."""
    from agent.platforms import make_client
    from agent.platforms.base import PlatformError
    from agent.platforms.haiyi import is_auto

    pinned = {
        p.name: str(getattr(p, "cluster", None))
        for p in loaded.config.profiles
        if p.platform == name and getattr(p, "cluster", None) and not is_auto(getattr(p, "cluster", None))
    }
    if not pinned:
        return []
    client = make_client(name, loaded.config.platforms[name], key)
    try:
        clusters = {c.name: c for c in client.clusters()}  # type: ignore[attr-defined]  # a Haiyi client
    except PlatformError as e:
        return [Check(f"clusters {name}", WARN, f"could not list the GPU clusters: {e}")]
    finally:
        client.close()
    out = []
    for profile, cl in sorted(pinned.items()):
        c = clusters.get(cl)
        if c is None or not c.active:
            out.append(
                Check(
                    f"cluster {cl}",
                    WARN,
                    f"profile {profile} is pinned to {cl}, which is not active now; "
                    'its jobs wait (cluster = "auto" picks an active one)',
                )
            )
        elif c.max_nodes and c.max_nodes > 0 and (c.curr_nodes or 0) >= c.max_nodes:
            out.append(
                Check(
                    f"cluster {cl}",
                    WARN,
                    f"profile {profile} is pinned to {cl}, which is full now "
                    f"({c.curr_nodes}/{c.max_nodes} nodes); its jobs queue there",
                )
            )
        else:
            out.append(
                Check(f"cluster {cl}", PASS, f"profile {profile}: {cl} active ({c.curr_nodes}/{c.max_nodes} nodes)")
            )
    return out


def check_mqtt(loaded: LoadedConfig, timeout: float = 5.0, daemon: dict | None = None) -> Check:
    """Connect once with the bridge's own client setup (protocol and its fallback, TLS, username/password). With the
    daemon running: what its bridge reports (state_dir/mqtt.json, e.g. another client using its client id). Without
    it: B/status retained as "online" means another booth is using this device.id."""
    m, device = loaded.config.mqtt, loaded.config.device
    if not m.enabled:
        return Check("mqtt", SKIP, "not enabled")
    from agent.mqtt.connection import first_protocol, probe, protocol_name
    from agent.mqtt.guard import read_problem
    from agent.mqtt.topics import Topics

    where = f"{m.host}:{m.port}"
    status = Topics.of(loaded.config).status
    try:
        p = probe(
            m,
            loaded.secrets,
            client_id=f"edge-agent-doctor-{device.id}",
            timeout=timeout,
            read_retained=status if daemon is None else None,
        )
    except (OSError, ValueError) as e:
        return Check("mqtt", FAIL, f"cannot connect to {where}: {e}")
    if not p.answered:
        return Check("mqtt", FAIL, f"no answer from the broker at {where} within {timeout:.0f} s")
    if not p.connected:
        return Check("mqtt", FAIL, f"cannot connect to the broker at {where}: {p.error}")
    detail = f"connected to {where}" + (" (TLS)" if m.tls else "")
    if p.protocol != protocol_name(first_protocol(m)):
        detail += f"; the broker speaks MQTT {p.protocol} only"
    problem = read_problem(device.state_dir) if daemon is not None else None
    if problem:
        return Check("mqtt", FAIL, f"{detail}; the daemon reports: {problem}")
    if p.retained == b"online":
        return Check(
            "mqtt",
            WARN,
            f"{detail}; {status} says online but no daemon runs here: another device uses device.id {device.id}, "
            "it seems (or this booth's daemon died less than a minute ago)",
        )
    return Check("mqtt", PASS, detail)


def check_printer(loaded: LoadedConfig) -> Check:
    """PASS when a print can go out now; the detail is the printer's {state}: {detail} (agent/printing)."""
    from agent.printing.printer_state import look

    p = loaded.config.printer
    if not p.enabled:
        return Check("printer", SKIP, "not enabled")
    view = look(p.queue)
    paper = f"; paper {p.media or 'the queue default'}"
    return Check("printer", PASS if view.usable else FAIL, f"{view.state}: {view.detail} (queue {p.queue!r}{paper})")


def check_disk(loaded: LoadedConfig) -> Check:
    from agent.steps.capture import free_disk_mb

    c = loaded.config
    for d in (c.device.state_dir, c.device.results_dir):
        problem = _not_writable(d)
        if problem:
            return Check("disk", FAIL, problem)
    need = c.queue.min_free_disk_mb
    folders = sorted({c.device.state_dir, c.device.results_dir})  # sorted: the same row on every run
    worst = min(((free_disk_mb(d), d) for d in folders), key=lambda x: x[0])
    free, where = worst
    detail = f"{free:.0f} MB free in {where} (photos are refused below {need} MB)"
    if free < need:
        return Check("disk", FAIL, detail)
    if free < need * 2:
        return Check("disk", WARN, detail)
    return Check("disk", PASS, detail)


def _not_writable(d: Path) -> str | None:
    """Why the agent could not write in `d` (created on first run if missing), or None."""
    p = d
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        return f"{p} is a file, not a folder ({d} cannot be created)"
    if not os.access(p, os.W_OK | os.X_OK):
        what = "write in" if p == d else f"create {d} in"
        return f"cannot {what} {p} as user {getpass.getuser()} (check its owner and permissions)"
    return None


def check_clock(skews: list[float]) -> Check:
    """Signed result links and TLS both need a right clock; a Pi has no RTC and relies on NTP."""
    parts, status = [], PASS
    r = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"]) if shutil.which("timedatectl") else None
    if r is not None and r.returncode == 0 and r.stdout.strip():
        synced = r.stdout.strip() == "yes"
        parts.append("NTP synchronized" if synced else "NTP not synchronized")
        if not synced:
            status = WARN
    if skews:
        worst = max(skews, key=abs)
        parts.append(f"{worst:+.0f} s from the platform's clock")
        if abs(worst) > 300:
            status = FAIL
        elif abs(worst) > 30 and status == PASS:
            status = WARN
    if not parts:
        return Check("clock", WARN, "cannot tell: no timedatectl and no platform answered")
    return Check("clock", status, "; ".join(parts))


def check_queue(loaded: LoadedConfig) -> Check:
    from agent.jobs.store import JobStore, StoreError

    db = loaded.config.device.state_dir / "jobs.db"
    if not db.exists():
        return Check("queue", PASS, f"empty (no {db} yet)")
    try:
        store = JobStore(db)
    except StoreError as e:
        return Check("queue", FAIL, str(e))
    try:
        integrity = store.integrity_check()
        counts = store.counts()
    finally:
        store.close()
    if integrity != "ok":
        return Check("queue", FAIL, f"database damaged: {integrity}")
    waiting = sum(v for k, v in counts.items() if k in ("captured", "submitting", "submitted", "downloading"))
    failed = counts.get("failed", 0) + counts.get("expired", 0)
    detail = f"integrity ok; {waiting} waiting, {failed} failed/expired, {counts.get('done', 0)} done"
    return Check("queue", WARN if failed else PASS, detail)


def _run(cmd: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        return None


def render(checks: list[Check], write: Callable[[str], None] = print) -> None:
    w = max(len(c.name) for c in checks)
    write(f"{'CHECK':<{w}}  STATUS  DETAIL")
    for c in checks:
        write(f"{c.name:<{w}}  {c.status:<6}  {c.detail}")
