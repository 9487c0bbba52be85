"""What both platform clients share: one session, dispatch to the endpoint's mode, downloads, close().

A client knows its platform's conventions (envelopes, status words, clusters); a mode (``agent.platforms.modes``)
knows one endpoint's request and poll route. ``submit`` and ``poll`` only look the mode up in the registry.

Everything a client hands back passes the edge here, whatever the mode parsed: every error message masked of the
key and bounded (``MESSAGE_CHARS``); a task id checked (never the key or 8 characters of it, never huge or with
control characters); a status's message, warnings, titles and text outputs masked and bounded, its outputs cut to
``max_outputs``, and an output link that carries the key refused. What the job stores is never a platform's
unbounded text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from pydantic import SecretStr

from agent.platforms import download as _download
from agent.platforms.base import Download, PlatformSettings, RemoteOutput, SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import MESSAGE_CHARS, PermanentError, PlatformError
from agent.platforms.session import PlatformHTTP

if TYPE_CHECKING:
    from agent.platforms.modes.common import Mode

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="HttpClientBase")

MAX_TASK_ID_CHARS = 200
WARNING_CHARS = 300  # each node warning as kept
MAX_WARNINGS = 10
TITLE_CHARS = 100
TEXT_OUTPUT_CHARS = 64 * 1024  # a text output (a caption, a poem) as kept
MAX_URL_CHARS = 8 * 1024  # a signed object-store link is long, but not this long
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def at_the_edge(method: Callable[Concatenate[C, P], R]) -> Callable[Concatenate[C, P], R]:
    """A client method whose PlatformErrors leave masked of the key and bounded, whoever raised them."""

    @functools.wraps(method)
    def edge(self: C, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except PlatformError as e:
            raise self.http.masked(e) from None

    return edge


class HttpClientBase:
    kind = ""  # easyai | haiyi
    label = ""  # the platform's name in messages
    supports_cancel = False

    def __init__(
        self, name: str, cfg: PlatformSettings, api_key: SecretStr | None, *, user_agent: str | None = None
    ) -> None:
        self.name = name
        self.http = PlatformHTTP(cfg, api_key, user_agent=user_agent)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.http.base_url!r})"

    def mode(self, endpoint: str) -> Mode:
        """The registered mode of one of this platform's endpoints; PermanentError for any other endpoint."""
        from agent.platforms.modes import MODES  # at call time: the mode modules import the clients' helpers

        mode = MODES.get(endpoint)
        if mode is None or mode.kind != self.kind:
            own = ", ".join(e for e, m in MODES.items() if m.kind == self.kind)
            raise PermanentError(f"{self.label} has no endpoint {endpoint!r} ({own})", kind="error")
        return mode

    @at_the_edge
    def submit(self, req: SubmitRequest) -> SubmitResult:
        result = self.mode(req.profile.endpoint).submit(self, req)
        if result.task_id is not None:
            self._check_task_id(result.task_id)
        if result.status is not None:
            result.status = clean_status(self.http, result.status)
        return result

    @at_the_edge
    def poll(self, task_id: str, endpoint: str) -> TaskStatus:
        """The status of a task, asked the way the endpoint it was submitted with is polled."""
        return clean_status(self.http, self.mode(endpoint).poll(self, str(task_id)))

    def cancel(self, task_id: str, endpoint: str) -> None:
        raise PermanentError(f"{self.label} has no cancel endpoint", kind="error")

    def probe(self) -> None:
        raise NotImplementedError

    def verify(self) -> str:
        raise NotImplementedError

    @property
    def server_date(self) -> str | None:
        return self.http.server_date

    @at_the_edge
    def download(
        self, output: RemoteOutput, dest: Path, *, deadline: float | None = None, max_bytes: int | None = None
    ) -> Download:
        return _download.download(self.http, output, dest, deadline=deadline, max_bytes=max_bytes)

    def close(self) -> None:
        self.http.close()

    def _check_task_id(self, task_id: str) -> None:
        """A task id is stored, logged and published: never the key, 8 characters of it, or anything unreasonable."""
        if self.http.contains_key(task_id):
            raise PermanentError(
                f"{self.label} answered with a task id that contains the API key; refused", kind="protocol"
            )
        if len(task_id) > MAX_TASK_ID_CHARS or _CONTROL.search(task_id):
            raise PermanentError(
                f"{self.label} answered with a task id that is not one ({len(task_id)} characters: "
                f"{self.http.preview(task_id, 40)!r})",
                kind="protocol",
            )


def clean_status(http: PlatformHTTP, st: TaskStatus) -> TaskStatus:
    """``st`` as it may be kept: platform texts masked and bounded, outputs cut to ``max_outputs``, links checked."""
    warnings = [http.text(w, WARNING_CHARS) for w in st.warnings[:MAX_WARNINGS]]
    if len(st.warnings) > MAX_WARNINGS:
        warnings.append(f"... and {len(st.warnings) - MAX_WARNINGS} more warnings")
    outputs: list[RemoteOutput] = []
    for o in st.outputs:
        if o.url is not None and http.contains_key(o.url):
            raise PermanentError(
                "the platform returned an output link that carries the API key; refused", kind="protocol"
            )
        if o.url is not None and len(o.url) > MAX_URL_CHARS:
            warnings.append(f"an output link of {len(o.url)} characters was dropped")
            continue
        text = None if o.text is None else http.text(o.text, TEXT_OUTPUT_CHARS)
        title = None if o.title is None else http.text(o.title, TITLE_CHARS)
        outputs.append(RemoteOutput(type=o.type, url=o.url, text=text, title=title))
    if len(outputs) > http.max_outputs:
        warnings.append(
            f"the platform returned {len(outputs)} outputs; kept the first {http.max_outputs} (max_outputs)"
        )
        outputs = outputs[: http.max_outputs]
    message = None if st.message is None else http.text(st.message, MESSAGE_CHARS)
    step = None if st.step is None else http.text(st.step, TITLE_CHARS)  # a platform text a guest may read
    return TaskStatus(st.state, st.progress, outputs, message, warnings, st.queue_position, step, st.eta_s)
