"""The newest-frame reader: one thread drains a live OpenCV source all the time, so a still is never a frame that
sat in a driver buffer.

Webcams queue frames (V4L2 keeps up to 4, `CAP_PROP_BUFFERSIZE` is ignored by many drivers; a network stream
queues seconds of them in socket buffers). Whoever reads only when a guest presses the button gets the oldest
queued frame - the "photo taken 2 s after the smile" complaint. Here a thread calls ``grab()`` in a loop (it only
dequeues, it does not decode), and a consumer asks for "the first frame grabbed after time t": the thread decodes
(``retrieve()``) just that one. So the queue is always empty, only wanted frames cost a decode, and the frame
handed back was grabbed after the trigger.

A grab that fails (the camera was unplugged, the stream ended) ends the thread and is reported to every waiter;
the camera is then re-opened by its owner.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class SourceLost(Exception):
    """The source stopped delivering frames."""


class NewestFrameReader:
    def __init__(self, cap: Any, name: str, on_exit: Any = None) -> None:
        self._cap = cap
        self._name = name
        self._on_exit = on_exit  # called on the reader thread once it stops (releases the device)
        self._cond = threading.Condition()
        self._want: float | None = None  # deliver the first frame grabbed at or after this monotonic time
        self._result: tuple[Any, float] | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self.grabbed = 0  # frames taken off the device (for tests and benchmarks)
        self.decoded = 0
        self.last_grab_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"camera-reader {name}", daemon=True)
        self._thread.start()

    @property
    def error(self) -> str | None:
        return self._error

    def frame_after(self, t: float, timeout: float) -> tuple[Any, float]:
        """(BGR frame, monotonic time it was grabbed) for the first frame whose grab began at or after `t`: a frame
        already arriving when the button was pressed (its grab began before) was made before it, so it is not
        taken - at most one frame interval later, never a frame older than the trigger."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._result = None
            self._want = t
            while self._result is None:
                if self._error is not None:
                    raise SourceLost(self._error)
                left = deadline - time.monotonic()
                if left <= 0:
                    self._want = None
                    raise TimeoutError(f"no frame within {timeout} s")
                self._cond.wait(left)
            result, self._result = self._result, None
            return result

    def stop(self, timeout: float) -> bool:
        """Stop reading; True once the thread has ended (it releases the device on its way out)."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                if not self._cap.grab():
                    self._fail(f"camera {self._name} stopped delivering frames (unplugged?)")
                    return
                at = time.monotonic()
                self.grabbed += 1
                self.last_grab_at = at
                with self._cond:
                    want = self._want
                if want is None or began < want:
                    continue
                ok, frame = self._cap.retrieve()
                self.decoded += 1
                with self._cond:
                    if not ok or frame is None:
                        self._error = f"camera {self._name} delivered an unreadable frame"
                    else:
                        self._result = (frame, at)
                    self._want = None
                    self._cond.notify_all()
        except Exception as e:  # a driver exception must reach the waiter, not vanish with the thread
            self._fail(f"camera {self._name} reader failed: {type(e).__name__}: {e}")
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _fail(self, message: str) -> None:
        with self._cond:
            self._error = message
            self._cond.notify_all()
