"""The composition root: one place builds the whole booth from one config snapshot and runs it as services.

Every service has ``start()``, ``stop()`` and ``alive``; they start in the order listed and stop in reverse:

=========  ==========================================  ==================================================
service    what                                        started when
=========  ==========================================  ==================================================
core       Agent: store, lifecycle, scheduler, mode    always
http       HttpApi: local API, SSE (later the kiosk)   always (``edge-agent run``, ``demo``)
retention  RetentionService: old finished jobs deleted  always (``[queue] keep_days``, ``keep_results_gb``)
mqtt       MqttBridge                                  ``[mqtt] enabled = true``
printer    PrintService (CUPS; its own thread)         ``[printer] enabled = true``
buttons    ButtonService (gpiozero)                    ``[[buttons]]`` configured
leds       LedService (gpiozero)                       any ``[indicators]`` pin configured
=========  ==========================================  ==================================================

Optional hardware that is missing (no GPIO on a laptop) is logged with the technician's message and left out;
the booth runs without it. ``dead()`` names the services that stopped on their own, for the systemd watchdog.
`edge-agent run` and `edge-agent demo` both use this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from agent.config import LoadedConfig
from agent.core import Agent
from agent.live import LiveConfig

log = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def alive(self) -> bool: ...


@dataclass
class Entry:
    name: str
    service: Service


class CannotStart(Exception):
    """A service the booth cannot run without could not start (e.g. the API's address is taken)."""


class Runtime:
    def __init__(self, loaded: LoadedConfig, *, camera: Any = None, gpio: bool = True) -> None:
        self.live = LiveConfig(loaded)
        self.agent = Agent(self.live, camera=camera)
        self.gpio = gpio
        self.entries: list[Entry] = []
        self.api: Any = None
        from agent.reload import Reloader

        self.reloader = Reloader(self, loaded.config.source)
        self.agent.reloader = self.reload
        from agent.configpush import ConfigPush

        self.agent.config_push = ConfigPush(self, loaded.config.source).request

    @property
    def config(self) -> Any:
        return self.live.config

    def start(self) -> None:
        from agent.httpapi import HttpApi

        cfg = self.config
        try:
            self.api = HttpApi(self.agent)  # binds now: a taken address is a clear error before anything runs
        except OSError as e:
            self.agent.stop()
            raise CannotStart(f"cannot listen on {cfg.http.listen} ([http] listen): {e.strerror}") from None
        self._start("core", self.agent)
        self._start("http", self.api)
        from agent.retention import RetentionService

        def keep() -> tuple[float, float, Any]:
            c = self.live.config
            return c.queue.keep_days, c.queue.keep_results_gb, c.device.results_dir

        self._start("retention", RetentionService(self.agent.lifecycle, keep))
        for name in ("mqtt", "printer", *(("buttons", "leds") if self.gpio else ())):
            self.start_optional(name)

    def start_optional(self, name: str) -> bool:
        """Start one optional service when the current config asks for it (at start and after a reload)."""
        cfg = self.config
        if name == "mqtt" and cfg.mqtt.enabled:
            from agent.mqtt import MqttBridge

            bridge = MqttBridge(self.agent)
            self.agent.mqtt = bridge
            self._start("mqtt", bridge)
            return True
        if name == "printer" and cfg.printer.enabled:
            from agent.printing.service import PrintService

            self.agent.printer = PrintService(self.agent)
            self._start("printer", self.agent.printer)
            return True
        if name in ("buttons", "leds") and self.gpio:
            return self._start_device(name)
        return False

    def drop(self, name: str) -> bool:
        """Stop one service and forget it (a reload restarts it from the new config)."""
        for e in list(self.entries):
            if e.name == name:
                try:
                    e.service.stop()
                except Exception:
                    log.exception("stopping %s failed", name)
                self.entries.remove(e)
                if name == "mqtt":
                    self.agent.mqtt = None
                elif name == "printer":
                    self.agent.printer = None
                return True
        return False

    def reload(self, source: str = "signal") -> Any:
        """Validate the config file again and apply it, or keep the running one (agent/reload.py)."""
        return self.reloader.reload(source)

    def _start(self, name: str, service: Service) -> None:
        service.start()
        self.entries.append(Entry(name, service))

    def _start_device(self, name: str) -> bool:
        cfg = self.config
        want = (
            bool(cfg.buttons) if name == "buttons" else any(v is not None for v in cfg.indicators.model_dump().values())
        )
        if not want:
            return False
        from agent.devices import ButtonService, LedService
        from hardware.gpio import GpioUnavailable

        service = ButtonService(self.agent) if name == "buttons" else LedService(self.agent)
        try:
            self._start(name, service)
        except GpioUnavailable as e:  # no GPIO here: say why once, run without it (doctor shows a FAIL)
            log.error("%s", e)
            return False
        return True

    def dead(self) -> list[str]:
        """Services that stopped on their own (a crashed thread): the watchdog stops feeding systemd."""
        return [e.name for e in self.entries if not e.service.alive]

    def stop(self) -> None:
        for e in reversed(self.entries):
            try:
                e.service.stop()
            except Exception:  # one service failing to stop must not keep the others running
                log.exception("stopping %s failed", e.name)
        self.entries.clear()
        self.reloader.close()
