"""One worker thread that runs calls by priority: a guest's capture never waits behind remote ones (there is one
camera, so captures run one at a time; a flood of MQTT captures must not queue ahead of a button press)."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = -1  # sorts before every real priority


class PriorityWorker:
    def __init__(self, name: str) -> None:
        self._q: queue.PriorityQueue[tuple[int, int, Callable[..., Any] | None, tuple[Any, ...], Future[Any] | None]]
        self._q = queue.PriorityQueue()
        self._seq = itertools.count()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, priority: int, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run `fn(*args)` on the worker; lower `priority` runs first. RuntimeError once shut down."""
        fut: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("shut down")
            self._q.put((priority, next(self._seq), fn, args, fut))
        return fut

    def pending(self) -> int:
        return self._q.qsize()

    def _run(self) -> None:
        while True:
            priority, _, fn, args, fut = self._q.get()
            if fn is None or fut is None:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # the caller gets every error through its future
                fut.set_exception(e)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Finish the running call, cancel the waiting ones."""
        with self._lock:
            self._closed = True
        while True:
            try:
                _, _, _, _, fut = self._q.get_nowait()
            except queue.Empty:
                break
            if fut is not None:
                fut.cancel()
        self._q.put((_STOP, next(self._seq), None, (), None))
        self._thread.join(timeout)
